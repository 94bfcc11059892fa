#!/usr/bin/env python3
"""Broker CPU per message: starts mqnamesrv + mqbroker from a build folder on free loopback ports, runs
`bench producer` against them, and reads the broker's user+sys time from /proc before and after the run.

    scripts/broker-cpu.py --build .build/release [--bench .build/release/bench] [--flush ASYNC_FLUSH]
        [-w 64] [-s 1024] [--duration 20] [--runs 3]

Prints one line per run and the median: messages, msgs/s, broker CPU microseconds per message."""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(process, needle, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        if needle in line:
            return
    raise RuntimeError("process did not print %r" % needle)


def one_run(args):
    directory = tempfile.mkdtemp(prefix="broker-cpu-")
    ns_port, broker_port = free_port(), free_port()
    open(os.path.join(directory, "ns.properties"), "w").write("listenPort=%d\n" % ns_port)
    open(os.path.join(directory, "broker.conf"), "w").write("\n".join([
        "brokerName=broker-a", "brokerIP1=127.0.0.1", "listenPort=%d" % broker_port, "haListenPort=%d" % free_port(),
        "namesrvAddr=127.0.0.1:%d" % ns_port, "storePathRootDir=%s/store" % directory,
        "flushDiskType=%s" % args.flush, "ioPath=%s" % args.io, ""]))
    env = dict(os.environ, MQ_EXIT_WITH_PARENT=str(os.getpid()))
    start = lambda argv: subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    ns = start([os.path.join(args.build, "mqnamesrv"), "-c", os.path.join(directory, "ns.properties")])
    broker = None
    try:
        wait_for(ns, "boot success")
        broker = start([os.path.join(args.build, "mqbroker"), "-c", os.path.join(directory, "broker.conf")])
        wait_for(broker, "boot success")
        report = os.path.join(directory, "result.json")
        before = cpu_seconds(broker.pid)
        length = ["--messages", str(args.messages)] if args.messages else ["--duration", str(args.duration)]
        subprocess.run([args.bench, "producer", "-n", "127.0.0.1:%d" % ns_port, "-w", str(args.w), "-s", str(args.s),
                        "--json", report] + length, check=True, stdout=subprocess.DEVNULL, env=env)
        after = cpu_seconds(broker.pid)
        result = json.load(open(report))
        messages = result["messages"] + 1  # and the warm-up send
        return messages, result["tps"], (after - before) * 1e6 / messages
    finally:
        for process in (broker, ns):
            if process and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(directory, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", required=True)
    parser.add_argument("--bench")
    parser.add_argument("--flush", default="ASYNC_FLUSH")
    parser.add_argument("--io", default="mmap")
    parser.add_argument("-w", type=int, default=64)
    parser.add_argument("-s", type=int, default=1024)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--messages", type=int, default=0, help="a fixed count instead of a duration (fairer per message)")
    parser.add_argument("--runs", type=int, default=3)
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
