#!/usr/bin/env bash
# The README's figures: `bench store` for every io path x flush mode, RUNS times each (default 3),
# printed as Markdown tables of medians. Table 1: the bare commit log at 128 B and 1 KiB. Table 2: through
# the MessageStore at 1 KiB (dispatch lag and read throughput). Needs a release build (make bench-table).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
BENCH=.build/release/bench
OUT=${OUT:-.build/bench-table.jsonl}
: > "$OUT"
run() {  # layer size flush io
  local layer=$1 size=$2 flush=$3 io=$4 producers messages
  if [ "$flush" = async ]; then producers=4; messages=$([ "$size" = 128 ] && echo 2000000 || echo 1000000)
  else producers=32; messages=60000; fi
  for run in $(seq "$RUNS"); do
    echo "bench-table: layer=$layer size=$size flush=$flush io=$io run=$run" >&2
    "$BENCH" store --layer "$layer" --io "$io" --flush "$flush" --size "$size" --producers "$producers" \
      --messages "$messages" ${WARM:+--warm} --json >> "$OUT"
  done
}
for size in 128 1024; do for flush in async sync; do for io in mmap io_uring; do run commitlog $size $flush $io; done; done; done
for flush in async sync; do for io in mmap io_uring; do run store 1024 $flush $io; done; done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
groups = {}
for r in rows:
    groups.setdefault((r["layer"], r["size"], r["flush"], r["io"]), []).append(r)
order = lambda kv: (kv[0][1], kv[0][2], kv[0][3] != "mmap")
print("| body | flush | io | producers | msgs/s | MB/s | p50 µs | p99 µs | p99.9 µs | max µs | baseline msgs/s | ratio | puts/flush |")
print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for (layer, size, flush, io), rs in sorted(groups.items(), key=order):
    if layer != "commitlog": continue
    med = lambda key: statistics.median(r[key] for r in rs)
    puts = "-" if flush == "ASYNC_FLUSH" else f'{statistics.median(r["messages"] / max(1, r["flushes"]) for r in rs):.1f}'
    print(f'| {size} B | {flush} | {io} | {rs[0]["producers"]} | {med("tps"):,.0f} | {med("mbps"):.1f} | {med("p50_us"):.1f} | '
          f'{med("p99_us"):.1f} | {med("p999_us"):.1f} | {med("max_us"):,.0f} | {med("baseline_tps"):,.0f} | {med("ratio"):.2f}x | {puts} |')
print()
print("| through MessageStore, 1 KiB | io | producers | msgs/s | p50 µs | p99 µs | dispatch lag p99 (msgs) | dispatch lag max | read msgs/s (get of 32) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for (layer, size, flush, io), rs in sorted(groups.items(), key=order):
    if layer != "store": continue
    med = lambda key: statistics.median(r[key] for r in rs)
    print(f'| {flush} | {io} | {rs[0]["producers"]} | {med("tps"):,.0f} | {med("p50_us"):.1f} | {med("p99_us"):.1f} | '
          f'{med("dispatch_lag_p99_msgs"):,.0f} | {med("dispatch_lag_max_msgs"):,.0f} | {med("read_tps"):,.0f} |')
print(f"\n(medians of {len(rs)} runs each)")
PY
