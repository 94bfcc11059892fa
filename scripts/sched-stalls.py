#!/usr/bin/env python3
"""Who kept a thread waiting for a core: reads `perf sched record` data and prints, per thread name, how long
threads waited runnable after a wake-up or a preemption (p50/p99/p99.9/max, count over the threshold), how long
each ran at a stretch, and, over every wait longer than the threshold, which threads ran on the cores meanwhile.

    perf sched record -o sched.data -- sleep 8      # while `bench producer ... --rate 80000` runs
    scripts/sched-stalls.py sched.data [--threshold-ms 1] [--detail N]

Names ending in digits are folded (NIO-ELT-1-#2 -> NIO-ELT-1-##). The kernel here records sched_waking, not
sched_wakeup; both are read. A CPU shown running swapper was idle while the thread waited.
"""
import argparse, bisect, collections, re, subprocess, sys

SWITCH = re.compile(r'prev_comm=(.*?) prev_pid=(\d+) prev_prio=(\d+) prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)')
WAKE = re.compile(r'comm=(.*?) pid=(\d+) prio=(\d+) target_cpu=(\d+)')
LINE = re.compile(r'\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)')


def fold(name):
    return re.sub(r'\d+$', '#', name)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('data')
    parser.add_argument('--threshold-ms', type=float, default=1.0)
    parser.add_argument('--detail', type=int, default=0, help='print the N longest waits with what ran meanwhile')
    args = parser.parse_args()
    script = subprocess.run(['perf', 'script', '-i', args.data, '-F', 'comm,tid,cpu,time,event,trace'],
                            capture_output=True, text=True, errors='replace').stdout
    segments = collections.defaultdict(list)  # cpu -> [(start, end, pid, name)]
    current, runnable = {}, {}
    waits, runs, long_waits = collections.defaultdict(list), collections.defaultdict(list), []
    for line in script.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        cpu, t, event, rest = int(m.group(3)), float(m.group(4)), m.group(5), m.group(6)
        if event.startswith('sched:sched_switch'):
            s = SWITCH.search(rest)
            if not s:
                continue
            prev_pid, state, next_name, next_pid = int(s.group(2)), s.group(4), s.group(5), int(s.group(6))
            if cpu in current:
                pid, name, since = current[cpu]
                segments[cpu].append((since, t, pid, name))
                runs[fold(name)].append((t - since) * 1000)
            if state.startswith('R') and prev_pid != 0:
                runnable[prev_pid] = t
            if next_pid in runnable:
                start = runnable.pop(next_pid)
                waits[fold(next_name)].append((t - start) * 1000)
                if (t - start) * 1000 > args.threshold_ms and next_pid != 0:
                    long_waits.append((start, t, next_pid, next_name))
            current[cpu] = (next_pid, next_name, t)
        elif event.startswith('sched:sched_wak'):
            w = WAKE.search(rest)
            if w:
                pid = int(w.group(2))
                if pid not in runnable and all(c[0] != pid for c in current.values()):
                    runnable[pid] = t

    def overlaps(start, end):
        for cpu, spans in sorted(segments.items()):
            i = bisect.bisect_left(spans, (start - 1,))
            for s0, s1, pid, name in spans[max(0, i - 5):]:
                if s0 > end:
                    break
                o = min(s1, end) - max(s0, start)
                if o > 0:
                    yield cpu, pid, name, o * 1000

    print('runnable waits (ms):      thread        n      p50      p99    p99.9      max  >threshold')
    for name, v in sorted(waits.items(), key=lambda kv: -len(kv[1]))[:25]:
        over = sum(1 for x in v if x > args.threshold_ms)
        print(f'  {name[:28]:28s} {len(v):8d} {pct(v, 50):8.3f} {pct(v, 99):8.3f} {pct(v, 99.9):8.3f} {max(v):8.3f} {over:8d}')
    print('\nrun stretches (ms):       thread        n   total     p50      p99      max')
    for name, v in sorted(runs.items(), key=lambda kv: -sum(kv[1]))[:20]:
        print(f'  {name[:28]:28s} {len(v):8d} {sum(v):8.1f} {pct(v, 50):7.3f} {pct(v, 99):8.3f} {max(v):8.3f}')
    blame = collections.Counter()
    for start, end, _, _ in long_waits:
        for _, _, name, ms in overlaps(start, end):
            blame[fold(name)] += ms
    print(f'\nwho ran on the cores during the {len(long_waits)} waits > {args.threshold_ms} ms (ms, both cores):')
    for name, ms in blame.most_common(20):
        print(f'  {name[:30]:30s} {ms:9.1f}')
    for start, end, pid, name in sorted(long_waits, key=lambda w: w[0] - w[1])[:args.detail]:
        print(f'\n{name}[{pid}] waited {(end - start) * 1000:.2f} ms from {start:.6f}')
        per_cpu = collections.defaultdict(list)
        for cpu, p, n, ms in overlaps(start, end):
            if ms > 0.2:
                per_cpu[cpu].append(f'{n}[{p}] {ms:.2f}')
        for cpu, items in sorted(per_cpu.items()):
            print(f'   cpu{cpu}: ' + ', '.join(items[:30]))


if __name__ == '__main__':
    try:
        main()
    except BrokenPipeError:
        sys.exit(0)
