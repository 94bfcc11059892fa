#!/usr/bin/env python3
"""Broker mallocs per message: starts mqnamesrv + mqbroker from a build folder on free loopback ports (the broker
under the malloc-count shim, scripts/malloc-count.c), sends a fixed number of messages with `bench producer`,
stops the broker with SIGTERM (the shim writes its count at the normal exit), and does so at two message counts:
per message = (count at the larger - count at the smaller) / (larger - smaller), start-up and shut-down cancelled.

    scripts/broker-mallocs.py --build .build/release [--bench .build/release/bench] [--flush ASYNC_FLUSH] [--io mmap]
        [-w 64] [-s 1024] [--counts 20000,60000]

Prints each run's count and the per-message figure."""
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


def run(args, shim, work, messages):
    counts = os.path.join(work, "counts-%d" % messages)
    conf = ["flushDiskType=%s" % args.flush, "ioPath=%s" % args.io]
    with CountedBroker(args.build, conf, shim, counts) as local:
        subprocess.run([args.bench, "producer", "-n", "127.0.0.1:%d" % local.ns_port, "-w", str(args.w), "-s", str(args.s),
                        "--messages", str(messages)], check=True, stdout=subprocess.DEVNULL, env=local.env)
    lines = [line.split() for line in open(counts) if "mqbroker" in line]
    if len(lines) != 1:
        raise RuntimeError("expected one broker count in %s, found %r" % (counts, lines))
    return int(lines[0][2])


def main():
    parser = argparse.ArgumentParser()
    add_load_arguments(parser)
    parser.add_argument("--counts", default="20000,60000")
    args = parser.parse_args()
    args.bench = args.bench or os.path.join(args.build, "bench")
    small, large = (int(text) for text in args.counts.split(","))
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory(prefix="broker-mallocs-") as work:
        shim = os.path.join(work, "libmc.so")
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", shim, os.path.join(here, "malloc-count.c")], check=True)
        few, many = run(args, shim, work, small), run(args, shim, work, large)
    print("%s: %d messages %d mallocs, %d messages %d mallocs: %.2f mallocs per message (%s, %s, -w %d -s %d)"
          % (args.build, small, few, large, many, (many - few) / (large - small), args.flush, args.io, args.w, args.s))


if __name__ == "__main__":
    sys.exit(main())
