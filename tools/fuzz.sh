#!/usr/bin/env bash
# Fuzzing of every parser the network reaches (fuzz/README.md): libFuzzer targets built on the
# stable toolchain with the sanitizer-coverage flags cargo-fuzz passes (no nightly, no
# cargo-fuzz), in a target dir of their own since their flags differ from the main build's.
#
#   tools/fuzz.sh [SECONDS]          build, then run every target over a copy of its committed
#                                    corpus for SECONDS (default 20) each; a crash fails. CI.
#   tools/fuzz.sh build              build the targets only
#   tools/fuzz.sh run TARGET SECONDS a long run: new inputs go to fuzz/work/TARGET (ignored by
#                                    git), the log to fuzz/work/TARGET.log
#   tools/fuzz.sh merge TARGET       minimize fuzz/corpus/TARGET plus fuzz/work/TARGET into
#                                    fuzz/corpus/TARGET (what gets committed)
#   tools/fuzz.sh seed               write the hand-made seeds (signed items of types 2, 3, 4 and
#                                    a bundle of them) into fuzz/corpus
#   tools/fuzz.sh targets            list the targets
# A crash leaves its input in fuzz/work/crash-*; once fixed, keep it in
# fuzz/regressions/TARGET/ so tests/fuzz_corpus.rs replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=(item tags bundle query route)
fuzz_target_dir="${FUZZ_TARGET_DIR:-$HOME/.cache/ao-su-fuzz-target}"
host=$(rustc -vV | sed -n 's/^host: //p')
bin="$fuzz_target_dir/$host/release"

build() {
    # --target keeps these flags off build scripts and proc macros, as cargo-fuzz does.
    RUSTFLAGS="-Cpasses=sancov-module \
        -Cllvm-args=-sanitizer-coverage-level=4 \
        -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
        -Cllvm-args=-sanitizer-coverage-pc-table \
        -Cllvm-args=-sanitizer-coverage-trace-compares \
        --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
        CARGO_TARGET_DIR="$fuzz_target_dir" cargo build --manifest-path fuzz/Cargo.toml --release --target "$host" --bins
}

# The largest input per target: items and bundles hold RSA keys and signatures (1 KiB each).
max_len() {
    case "$1" in
        item | bundle) echo 16384 ;;
        *) echo 4096 ;;
    esac
}

# run TARGET SECONDS OUTPUT_CORPUS: new inputs into OUTPUT_CORPUS, the committed corpus read.
run() {
    local target=$1 seconds=$2 out=$3
    mkdir -p "$out" fuzz/work
    "$bin/$target" "$out" "fuzz/corpus/$target" \
        -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="fuzz/work/$target-"
}

case "${1:-}" in
    build) build ;;
    targets) printf '%s\n' "${TARGETS[@]}" ;;
    run)
        target=${2:?target}
        seconds=${3:?seconds}
        run "$target" "$seconds" "fuzz/work/$target" 2>&1 | tee "fuzz/work/$target.log"
        ;;
    merge)
        target=${2:?target}
        merged=$(mktemp -d)
        mkdir -p "fuzz/work/$target"
        "$bin/$target" -merge=1 -max_len="$(max_len "$target")" "$merged" \
            "fuzz/corpus/$target" "fuzz/work/$target"
        rm -rf "fuzz/corpus/$target"
        mv "$merged" "fuzz/corpus/$target"
        chmod 755 "fuzz/corpus/$target"
        ls "fuzz/corpus/$target" | wc -l
        ;;
    seed)
        cargo test --test fuzz_corpus -- --ignored write_hand_made_seeds
        ;;
    *)
        seconds=${1:-20}
        build
        scratch=$(mktemp -d)
        trap 'rm -rf "$scratch"' EXIT
        for target in "${TARGETS[@]}"; do
            echo "== fuzz $target for ${seconds}s over fuzz/corpus/$target"
            if ! run "$target" "$seconds" "$scratch/$target" >"$scratch/$target.log" 2>&1; then
                tail -n 60 "$scratch/$target.log"
                echo "fuzz target $target failed; its input is fuzz/work/$target-crash-*" >&2
                exit 1
            fi
            grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+[[:space:]]+DONE' \
                "$scratch/$target.log" || true
        done
        echo "fuzzing found nothing"
        ;;
esac
