#!/usr/bin/env python3
"""Broker mallocs per message: starts mqnamesrv + mqbroker from a build folder on free loopback ports (the broker
under the malloc-count shim, scripts/malloc-count.c), sends a fixed number of messages with `bench producer`,
stops the broker with SIGTERM (the shim writes its count at the normal exit), and does so at two message counts:
per message = (count at the larger - count at the smaller) / (larger - smaller), start-up and shut-down cancelled.

    scripts/broker-mallocs.py --build .build/release [--bench .build/release/bench] [--flush ASYNC_FLUSH] [--io mmap]
        [-w 64] [-s 1024] [--counts 20000,60000] [--max 0.5]

Prints each run's count and the per-message figure, the broker's and the client's (`bench producer`, under the same
shim). With --max, exits 1 when either figure is above it (`make malloc-check`: the hot paths allocate nothing per
message)."""
import argparse, os, subprocess, sys, tempfile

from local_broker import LocalBroker, add_load_arguments


class CountedBroker(LocalBroker):
    """A LocalBroker whose broker runs with the shim preloaded, writing its count to `counts`."""

    def __init__(self, build, conf, shim, counts):
        super().__init__(build, "broker-mallocs-", conf, stop_seconds=60)
        self.shim, self.counts = shim, counts

    def _start(self, role, conf):
        if role != "mqbroker":
            return super()._start(role, conf)
        env = dict(self.env, LD_PRELOAD=self.shim, MC_OUT=self.counts)
        return subprocess.Popen([os.path.join(self.build, role), "-c", os.path.join(self.directory, conf)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def count_of(counts, executable):
    lines = [line.split() for line in open(counts) if os.path.basename(line.split()[0]) == executable]
    if len(lines) != 1:
        raise RuntimeError("expected one %s count in %s, found %r" % (executable, counts, lines))
    return int(lines[0][2])


def run(args, shim, work, messages):
    """The broker's and the client's malloc counts for one run of `messages`."""
    counts = os.path.join(work, "counts-%d" % messages)
    conf = ["flushDiskType=%s" % args.flush, "ioPath=%s" % args.io] + args.conf
    with CountedBroker(args.build, conf, shim, counts) as local:
        subprocess.run([args.bench, "producer", "-n", "127.0.0.1:%d" % local.ns_port, "-w", str(args.w), "-s", str(args.s),
                        "--messages", str(messages)], check=True, stdout=subprocess.DEVNULL,
                       env=dict(local.env, LD_PRELOAD=shim, MC_OUT=counts))
    return count_of(counts, "mqbroker"), count_of(counts, os.path.basename(args.bench))


def main():
    parser = argparse.ArgumentParser()
    add_load_arguments(parser)
    parser.add_argument("--counts", default="20000,60000")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="another broker.conf line (repeatable)")
    parser.add_argument("--max", type=float, help="fail when the broker's or the client's mallocs per message exceed this")
    args = parser.parse_args()
    args.bench = args.bench or os.path.join(args.build, "bench")
    small, large = (int(text) for text in args.counts.split(","))
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory(prefix="broker-mallocs-") as work:
        shim = os.path.join(work, "libmc.so")
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", shim, os.path.join(here, "malloc-count.c")], check=True)
        few, many = run(args, shim, work, small), run(args, shim, work, large)
    failed = False
    for side, before, after in (("broker", few[0], many[0]), ("client", few[1], many[1])):
        per = (after - before) / (large - small)
        print("%s %s: %d messages %d mallocs, %d messages %d mallocs: %.2f mallocs per message (%s, %s, -w %d -s %d)"
              % (args.build, side, small, before, large, after, per, args.flush, args.io, args.w, args.s))
        if args.max is not None and per > args.max:
            print("%s: %.2f mallocs per message is over the limit of %.2f" % (side, per, args.max))
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
