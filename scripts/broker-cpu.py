#!/usr/bin/env python3
"""Broker CPU per message: starts mqnamesrv + mqbroker from a build folder on free loopback ports, runs
`bench producer` against them, and reads the broker's user+sys time from /proc before and after the run.

    scripts/broker-cpu.py --build .build/release [--bench .build/release/bench] [--flush ASYNC_FLUSH]
        [-w 64] [-s 1024] [--duration 20] [--runs 3] [--conf KEY=VALUE ...] [--threads]

Prints one line per run and the median: messages, msgs/s, broker CPU microseconds per message. With --threads, each
run also prints the broker's threads by name (event loops, group commit, dispatch, pre-writers...): their CPU
microseconds and voluntary context switches (wake-ups after a sleep) per message; and the flushes in the run
(brokerStatus' commitLogFlushCount): messages per flush and the flush threads' CPU per flush."""
import argparse, collections, json, os, statistics, subprocess, sys

from local_broker import LocalBroker, add_load_arguments


def cpu_seconds(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_counters(pid):
    """Per thread name: user+sys seconds and voluntary context switches, summed over the threads of that name."""
    cpu, switches = collections.Counter(), collections.Counter()
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            name = open("/proc/%d/task/%s/comm" % (pid, tid)).read().strip()
            fields = open("/proc/%d/task/%s/stat" % (pid, tid)).read().rsplit(")", 1)[1].split()
            status = open("/proc/%d/task/%s/status" % (pid, tid)).read()
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        cpu[name] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        switches[name] += int(status.split("voluntary_ctxt_switches:")[1].split()[0])
    return cpu, switches


# The threads that flush under SYNC_FLUSH: the mmap group commit's lanes, the io_uring ring thread and the kernel's
# io_uring workers that run its FDATASYNCs.
FLUSH_THREADS = ("group-commit-", "io-uring-ring", "iou-wrk-")


def flush_count(local):
    """The broker's commitLogFlushCount (brokerStatus), or None when it cannot be read."""
    output = subprocess.run([os.path.join(local.build, "mqadmin"), "brokerStatus", "-n", "127.0.0.1:%d" % local.ns_port,
                             "-b", "127.0.0.1:%d" % local.broker_port], capture_output=True, text=True, env=local.env).stdout
    for line in output.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "commitLogFlushCount":
            return int(value.strip())
    return None


def print_threads(before, after, messages, flushes):
    (cpu0, sw0), (cpu1, sw1) = before, after
    for name in sorted(cpu1, key=lambda n: cpu0[n] - cpu1[n]):
        micros, wakes = (cpu1[name] - cpu0[name]) * 1e6 / messages, (sw1[name] - sw0[name]) / messages
        if micros >= 0.005 or wakes >= 0.0005:
            print("    %-18s %6.2f us/msg  %.3f wake-ups/msg" % (name, micros, wakes))
    if flushes:
        flush_seconds = sum(cpu1[n] - cpu0[n] for n in cpu1 if n.startswith(FLUSH_THREADS))
        print("    %d flushes, %.1f messages per flush; flush threads' CPU %.1f us per flush"
              % (flushes, messages / flushes, flush_seconds * 1e6 / flushes))


def one_run(args):
    with LocalBroker(args.build, "broker-cpu-", ["flushDiskType=%s" % args.flush, "ioPath=%s" % args.io] + args.conf,
                     stop_seconds=30) as local:
        report = os.path.join(local.directory, "result.json")
        threads_before = thread_counters(local.broker.pid) if args.threads else None
        flushes_before = flush_count(local) if args.threads else None
        before = cpu_seconds(local.broker.pid)
        length = ["--messages", str(args.messages)] if args.messages else ["--duration", str(args.duration)]
        subprocess.run([args.bench, "producer", "-n", "127.0.0.1:%d" % local.ns_port, "-w", str(args.w), "-s", str(args.s),
                        "--json", report] + length, check=True, stdout=subprocess.DEVNULL, env=local.env)
        after = cpu_seconds(local.broker.pid)
        result = json.load(open(report))
        messages = result["messages"] + 1  # and the warm-up send
        if args.threads:
            flushes_after = flush_count(local)
            flushes = flushes_after - flushes_before if flushes_before is not None and flushes_after is not None else None
            print_threads(threads_before, thread_counters(local.broker.pid), messages, flushes)
        return messages, result["tps"], (after - before) * 1e6 / messages


def main():
    parser = argparse.ArgumentParser()
    add_load_arguments(parser)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--messages", type=int, default=0, help="a fixed count instead of a duration (fairer per message)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="another broker.conf line (repeatable)")
    parser.add_argument("--threads", action="store_true", help="also the broker's CPU and wake-ups per message by thread name")
    args = parser.parse_args()
    args.bench = args.bench or os.path.join(args.build, "bench")
    rows = []
    for run in range(args.runs):
        messages, tps, micros = one_run(args)
        rows.append(micros)
        print("run %d: %d messages, %.0f msgs/s, broker CPU %.2f us/msg" % (run + 1, messages, tps, micros), flush=True)
    length = "%d messages" % args.messages if args.messages else "%d s" % args.duration
    print("median broker CPU: %.2f us/msg (%s, %s, %d x %d B, %s)" % (statistics.median(rows), args.flush, args.io, args.w, args.s, length))


if __name__ == "__main__":
    sys.exit(main())
