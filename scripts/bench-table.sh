#!/usr/bin/env bash
# Runs `bench store` for every io path x flush mode at 128 B and 1 KiB, RUNS times each (default 3),
# and prints a Markdown table of the medians. Needs a release build (make bench-table does it).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
BENCH=.build/release/bench
OUT=${OUT:-.build/bench-table.jsonl}
: > "$OUT"
for size in 128 1024; do
  for flush in async sync; do
    for io in mmap io_uring; do
      if [ "$flush" = async ]; then producers=4; messages=$([ "$size" = 128 ] && echo 2000000 || echo 1000000)
      else producers=32; messages=60000; fi
      for run in $(seq "$RUNS"); do
        echo "bench-table: size=$size flush=$flush io=$io run=$run" >&2
        "$BENCH" store --io "$io" --flush "$flush" --size "$size" --producers "$producers" \
          --messages "$messages" ${WARM:+--warm} --json >> "$OUT"
      done
    done
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
groups = {}
for r in rows:
    groups.setdefault((r["size"], r["flush"], r["io"]), []).append(r)
print("| body | flush | io | producers | msgs/s | MB/s | p50 µs | p99 µs | p99.9 µs | max µs | baseline msgs/s | ratio | puts/flush |")
print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for (size, flush, io), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] != "mmap")):
    med = lambda key: statistics.median(r[key] for r in rs)
    puts = "-" if flush == "ASYNC_FLUSH" else f'{statistics.median(r["messages"] / max(1, r["flushes"]) for r in rs):.1f}'
    print(f'| {size} B | {flush} | {io} | {rs[0]["producers"]} | {med("tps"):,.0f} | {med("mbps"):.1f} | {med("p50_us"):.1f} | '
          f'{med("p99_us"):.1f} | {med("p999_us"):.1f} | {med("max_us"):,.0f} | {med("baseline_tps"):,.0f} | {med("ratio"):.2f}x | {puts} |')
print(f"\n(medians of {len(rs)} runs each)")
PY
