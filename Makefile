# The two commands the README promises: `make run` (the main job) and `make test` (every test).
SWIFT ?= swift

.PHONY: setup run test bench-table benchmarks

setup:
	./scripts/setup.sh

# Main job: a release build and a short storage benchmark (async and sync flush) printing TPS and
# append-to-durable latency percentiles beside a baseline from the same run.
run: setup
	$(SWIFT) build -c release --product bench
	.build/release/bench store --io mmap --flush async --size 1024 --producers 4 --messages 1000000
	.build/release/bench store --io io_uring --flush sync --size 1024 --producers 32 --messages 50000

# Every test: the Swift suites (codec, flush, recovery, SIGKILL loops, disk full, queues, index,
# remoting, NameServer), then the official C++ client against real mqnamesrv/mqbroker processes.
test: setup
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel
	./scripts/compat-test.sh

# The README's figure table: every io x flush combination at 128 B and 1 KiB, medians of 3 runs.
bench-table: setup
	$(SWIFT) build -c release --product bench
	./scripts/bench-table.sh

# ordo-one micro-benchmarks with malloc counts (a package of its own under Benchmarks/).
benchmarks: setup
	cd Benchmarks && $(SWIFT) package --disable-sandbox benchmark
