#!/usr/bin/env bash
# Coverage-guided fuzzing of the store's decoders and recovery, and of every decoder of network input (remoting
# frames and headers, bodies, properties, batches, stored messages, the HA stream) (libFuzzer + AddressSanitizer, Fuzz/).
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     default: 60 s each, every target
#   FUZZ_SEEDS=1 scripts/fuzz.sh ...                       rewrite Fuzz/Corpus/<target>/seed-* from real records first
#
# Builds every target in Fuzz/ (release, -sanitize=fuzzer,address: the store's modules are instrumented
# too) into .build-fuzz/, then runs each for the given time. Inputs that found new coverage go to
# .build-fuzz/corpus/<target>/ (not committed; the seeds in Fuzz/Corpus/ are), logs to
# .build-fuzz/logs/<target>.log. A crash, an invariant failure (fuzzFailure), a timeout (10 s per input)
# or an out-of-memory leaves the input in .build-fuzz/artifacts/<target>/ and makes this script fail;
# replay one with `.build-fuzz/release/<target> <artifact>`, then add it to the normal tests.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
all=(FuzzRecordDecoder FuzzUnitCheck FuzzCommitLogRecovery FuzzStoreRecovery FuzzIndexFile
     FuzzRemotingFrame FuzzBodies FuzzMessageCodecs FuzzHAStream FuzzAclFile)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

build=(swift build --package-path Fuzz --scratch-path .build-fuzz -c release -Xswiftc -sanitize=fuzzer,address)
echo "fuzz: building ${targets[*]}"
# ld.gold warns about every ASan check symbol it cannot export; those lines are noise.
"${build[@]}" 2>&1 | grep -v "Cannot export local symbol" || true
bin="$("${build[@]}" --show-bin-path)"

failed=()
for target in "${targets[@]}"; do
    [ -x "$bin/$target" ] || { echo "fuzz: $target was not built" >&2; exit 2; }
    seeds="Fuzz/Corpus/$target"
    # seed-* files come from the target itself (real records); regression-* files are inputs that once
    # failed, kept so every run tries them first.
    if [ -n "${FUZZ_SEEDS:-}" ] || ! ls "$seeds"/seed-* >/dev/null 2>&1; then
        rm -f "$seeds"/seed-*
        FUZZ_WRITE_SEEDS="$seeds" "$bin/$target"
    fi
    mkdir -p ".build-fuzz/corpus/$target" ".build-fuzz/artifacts/$target" .build-fuzz/logs
    log=".build-fuzz/logs/$target.log"
    echo "fuzz: $target for ${seconds} s (log: $log)"
    status=0
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="detect_leaks=0:${ASAN_OPTIONS:-}" "$bin/$target" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix=".build-fuzz/artifacts/$target/" \
        ".build-fuzz/corpus/$target" "$seeds" >"$log" 2>&1 || status=$?
    runs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    rate=$(grep -m1 'stat::average_exec_per_sec' "$log" | awk '{print $2}')
    if [ "$status" -ne 0 ]; then
        echo "fuzz: $target FAILED (exit $status) after ${runs:-?} runs; input in .build-fuzz/artifacts/$target/:" >&2
        grep -E 'ERROR|fuzz invariant|Fatal error|SUMMARY' "$log" | head -5 >&2 || true
        failed+=("$target")
    else
        echo "fuzz: $target ok: ${runs:-?} runs, ${rate:-?} per second"
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failures in ${failed[*]}" >&2
    exit 1
fi
