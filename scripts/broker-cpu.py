#!/usr/bin/env python3
"""Broker CPU per message: starts mqnamesrv + mqbroker from a build folder on free loopback ports, runs
`bench producer` against them, and reads the broker's user+sys time from /proc before and after the run.

    scripts/broker-cpu.py --build .build/release [--bench .build/release/bench] [--flush ASYNC_FLUSH]
        [-w 64] [-s 1024] [--duration 20] [--runs 3] [--conf KEY=VALUE ...]

Prints one line per run and the median: messages, msgs/s, broker CPU microseconds per message."""
import argparse, json, os, statistics, subprocess, sys

from local_broker import LocalBroker, add_load_arguments


def cpu_seconds(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(args):
    with LocalBroker(args.build, "broker-cpu-", ["flushDiskType=%s" % args.flush, "ioPath=%s" % args.io] + args.conf,
                     stop_seconds=30) as local:
        report = os.path.join(local.directory, "result.json")
        before = cpu_seconds(local.broker.pid)
        length = ["--messages", str(args.messages)] if args.messages else ["--duration", str(args.duration)]
        subprocess.run([args.bench, "producer", "-n", "127.0.0.1:%d" % local.ns_port, "-w", str(args.w), "-s", str(args.s),
                        "--json", report] + length, check=True, stdout=subprocess.DEVNULL, env=local.env)
        after = cpu_seconds(local.broker.pid)
        result = json.load(open(report))
        messages = result["messages"] + 1  # and the warm-up send
        return messages, result["tps"], (after - before) * 1e6 / messages


def main():
    parser = argparse.ArgumentParser()
    add_load_arguments(parser)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--messages", type=int, default=0, help="a fixed count instead of a duration (fairer per message)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="another broker.conf line (repeatable)")
    args = parser.parse_args()
    args.bench = args.bench or os.path.join(args.build, "bench")
    rows = []
    for run in range(args.runs):
        messages, tps, micros = one_run(args)
        rows.append(micros)
        print("run %d: %d messages, %.0f msgs/s, broker CPU %.2f us/msg" % (run + 1, messages, tps, micros), flush=True)
    print("median broker CPU: %.2f us/msg (%s, %s, %d x %d B, %d s)" % (statistics.median(rows), args.flush, args.io, args.w, args.s,
                                                                       args.duration))


if __name__ == "__main__":
    sys.exit(main())
