# The two commands the README promises: `make run` (the main job) and `make test` (every test).
SWIFT ?= swift

.PHONY: setup run test malloc-check powerloss bench-store bench-matrix bench-table bench-chaos benchmarks

setup:
	./scripts/setup.sh

# Main job: a release build, then a local NameServer + broker (temporary store, free ports) and 20 s of
# `bench producer` (64 threads, 1 KiB, sync sends): TPS and RT percentiles, and report.html with charts.
run: setup
	$(SWIFT) build -c release
	.build/release/bench producer -w 64 -s 1024 --duration 20 --report report.html --json report.json

# The storage engine alone: append throughput and append-to-durable latency beside a same-run baseline.
bench-store: setup
	$(SWIFT) build -c release --product bench
	.build/release/bench store --io mmap --flush async --size 1024 --producers 4 --messages 1000000
	.build/release/bench store --io io_uring --flush sync --size 1024 --producers 32 --messages 50000

# The README's broker table: flush x io x size x threads against fresh local clusters, plus the same load
# against NATS JetStream (Debian's nats-server) and Redis Streams (Debian's redis-server), one table and report-matrix.html.
bench-matrix: setup
	./scripts/setup.sh nats
	./scripts/setup.sh redis
	$(SWIFT) build -c release
	.build/release/bench matrix --sizes 128,1024 --threads 1,16,64 --flush async,sync --io mmap,io_uring --duration 10 --peer nats,redis --report report-matrix.html

FUZZ_SECONDS ?= 15

# Every test: the Swift suites (codec, flush, recovery, SIGKILL loops, disk full, queues, index,
# remoting, NameServer, broker, Swift client, mqadmin, mqcluster over conf/*, five hosts in network namespaces with one
# cut — root only, skipped otherwise), then the official C++ client against real
# mqnamesrv/mqbroker processes, mixed Swift/C++ clients, the bench report and every mqdashboard page rendered by headless Chromium, and
# power cuts under load on a FUSE file system that keeps only what was synced (one round per io path x flush
# mode x namespace model, then io_uring + SYNC_FLUSH again with two group-commit rounds in flight), and every fuzz target for FUZZ_SECONDS each (libFuzzer + AddressSanitizer; a crash fails the run).
test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel
	./scripts/compat-test.sh
	./scripts/powerloss-test.sh
	POWERLOSS_IO=io_uring POWERLOSS_FLUSH=SYNC_FLUSH POWERLOSS_CONF=groupCommitLanes=2 ./scripts/powerloss-test.sh
	./scripts/fuzz.sh $(FUZZ_SECONDS)
	$(MAKE) malloc-check

# The send path allocates nothing per message: a release build, then the broker's and the client's mallocs per
# message (scripts/broker-mallocs.py: 64 senders x 1 KiB, 60k minus 20k messages, an LD_PRELOAD counter) in every
# flush mode x io path, each at most MALLOC_MAX (today 0.001-0.04).
MALLOC_MAX ?= 0.5
malloc-check: setup
	$(SWIFT) build -c release
	for mode in ASYNC_FLUSH SYNC_FLUSH; do for io in mmap io_uring; do \
	  python3 scripts/broker-mallocs.py --build .build/release --flush $$mode --io $$io --max $(MALLOC_MAX) || exit 1; done; done

# Power loss: the store on powerfs (FUSE; keeps only what was fsynced), the power cut at seeded moments under
# load, what survives checked (Tests/powerloss/README.md). POWERLOSS_ROUNDS=N for more rounds per combination.
powerloss: setup
	$(SWIFT) build
	./scripts/powerloss-test.sh

# The README's figure table: every io x flush combination at 128 B and 1 KiB, medians of 3 runs.
bench-table: setup
	$(SWIFT) build -c release --product bench
	./scripts/bench-table.sh

# The README's chaos figures: every fault kind under load, a DLedger group and a SYNC_MASTER pair (4 min each;
# partition needs root for network namespaces). CHAOS_SECONDS=N for another length.
CHAOS_SECONDS ?= 240
bench-chaos: setup
	$(SWIFT) build -c release
	.build/release/bench chaos --cluster dledger --faults kill,suspend,partition,leader-kill,leader-suspend --interval 10 --pause 4 --duration $(CHAOS_SECONDS) --rate 300 --seed 42 --report report-chaos-dledger.html
	.build/release/bench chaos --cluster master-slave --replication sync --flush sync --faults kill,suspend,partition,leader-kill,leader-suspend --interval 10 --pause 4 --duration $(CHAOS_SECONDS) --rate 300 --seed 42 --report report-chaos-master-slave.html

# ordo-one micro-benchmarks with malloc counts (a package of its own under Benchmarks/).
benchmarks: setup
	cd Benchmarks && $(SWIFT) package --disable-sandbox benchmark
