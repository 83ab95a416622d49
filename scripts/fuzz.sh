#!/usr/bin/env bash
# Fuzzes the code that reads uploads (fuzz/, docs/spec.md §12): the CSV/XLSX/XLS readers with their
# pre-checks, the header matcher, every normaliser/validator of foxflow-domain.
#
#   scripts/fuzz.sh short [target…]   each target FUZZ_SECONDS (default 25 s), FUZZ_JOBS (default 2)
#                                      at a time: 8 targets ≈ 2 min on 2 cores, plus the first build
#   scripts/fuzz.sh long  [target…]   each target FUZZ_SECONDS (default 600 s)
#
# Every run has an RSS limit (-rss_limit_mb, FUZZ_RSS_MB, default 2048: far above what the fuzz
# limits in fuzz/src/lib.rs let a file cost) and a per-input timeout (-timeout, 10 s). New inputs
# go to $target_dir/fuzz-corpus/<target> (never into the committed seeds under fuzz/corpus/);
# a crash is saved under fuzz/artifacts/<target>/ and makes this script fail — reproduce it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>   (from the repo root)
#
# The toolchain is stable: RUSTC_BOOTSTRAP=1 lets it accept the -Z flags cargo-fuzz passes
# (sanitizer, coverage instrumentation). When this machine cannot build fuzz targets at all
# (no cargo-fuzz and no way to install it, no C++ compiler for libFuzzer, a rustc that refuses
# -Zsanitizer) the script says why and exits 0 ("skipped: …"); a fuzz target that does not
# compile, or any finding, is a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

mode="${1:-short}"
shift || true
case "$mode" in
    short) seconds="${FUZZ_SECONDS:-25}" ;;
    long) seconds="${FUZZ_SECONDS:-600}" ;;
    *)
        echo "usage: $0 short|long [target…]" >&2
        exit 2
        ;;
esac
jobs="${FUZZ_JOBS:-2}"
rss_mb="${FUZZ_RSS_MB:-2048}"
sanitizer="${FUZZ_SANITIZER:-address}"

skip() {
    echo "fuzz: skipped: $*"
    exit 0
}

command -v cargo >/dev/null || skip "cargo is not installed"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked || skip "cargo-fuzz is missing and could not be installed"
fi
export RUSTC_BOOTSTRAP=1
command -v c++ >/dev/null || command -v g++ >/dev/null || command -v clang++ >/dev/null ||
    skip "no C++ compiler to build libFuzzer (install g++ or clang)"
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
echo 'fn main() {}' >"$probe/probe.rs"
if [[ "$sanitizer" != none ]] &&
    ! rustc -Zsanitizer="$sanitizer" --out-dir "$probe" "$probe/probe.rs" >"$probe/log" 2>&1; then
    skip "rustc $(rustc --version | cut -d' ' -f2) cannot build with -Zsanitizer=$sanitizer: $(head -c 300 "$probe/log")"
fi

target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
work="${CARGO_TARGET_DIR:-$PWD/target}/fuzz-corpus"
logs="${CARGO_TARGET_DIR:-$PWD/target}/fuzz-logs"
mkdir -p "$work" "$logs"

if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi

echo "fuzz: building ${#targets[@]} targets (sanitizer: $sanitizer)"
(cd fuzz && cargo fuzz build --sanitizer "$sanitizer" --target-dir "$target_dir")

run_one() {
    local t="$1"
    mkdir -p "$work/$t" "fuzz/artifacts/$t"
    # -max_total_time bounds the run; -timeout a single input; -rss_limit_mb the whole process.
    (cd fuzz && cargo fuzz run --sanitizer "$sanitizer" --target-dir "$target_dir" "$t" \
        "$work/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb="$rss_mb" \
        -print_final_stats=1 -close_fd_mask=3) >"$logs/$t.log" 2>&1
}

echo "fuzz: $mode run, ${seconds}s per target, $jobs at a time, logs in $logs"
declare -A pids=()
failed=()
for t in "${targets[@]}"; do
    while (($(jobs -rp | wc -l) >= jobs)); do
        wait -n || true
    done
    run_one "$t" &
    pids[$t]=$!
done
for t in "${targets[@]}"; do
    if ! wait "${pids[$t]}"; then
        failed+=("$t")
    fi
done

for t in "${targets[@]}"; do
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | tail -1 | grep -o '[0-9]*$' || true)"
    cov="$(grep -o 'cov: [0-9]*' "$logs/$t.log" | tail -1 || true)"
    status=ok
    [[ " ${failed[*]} " == *" $t "* ]] && status=FAILED
    printf '  %-20s %-7s %10s execs  %s\n' "$t" "$status" "${execs:-?}" "$cov"
done
if ((${#failed[@]} > 0)); then
    for t in "${failed[@]}"; do
        echo "---- $t ($logs/$t.log) ----"
        grep -E 'ERROR|panicked|SUMMARY|Test unit written|Crash|deadly signal|out-of-memory|timeout' \
            "$logs/$t.log" | head -20
    done
    echo "fuzz: findings in ${failed[*]}; the inputs are under fuzz/artifacts/" >&2
    exit 1
fi
echo "fuzz: no findings"
