#!/usr/bin/env bash
# Run every cargo-fuzz target for FUZZ_SECONDS (default 60) each, one job each,
# from seed corpora generated out of tests/fixtures; fail on the first crash.
#
#   bash tests/scripts/fuzz_smoke.sh                 # all six targets, 60 s each
#   FUZZ_SECONDS=600 bash tests/scripts/fuzz_smoke.sh gguf_parse
#
# Needs: rustup nightly (installed here if missing), cargo-fuzz (installed if
# missing, ~1 min), python3 (corpus generation, stdlib only). Crashing inputs
# land in fuzz/artifacts/<target>/; copy them to tests/fixtures/regressions/<target>/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SECS="${FUZZ_SECONDS:-60}"
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(gguf_parse model_eval arena_context tokenizer sampler capi_sequence)

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz_smoke: installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz_smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cd "$ROOT/fuzz"
python3 gen_corpus.py

# Inputs of the structured targets are short; the file target keeps the
# fixture-sized default; texts get room for long pieces.
max_len() {
    case "$1" in
        gguf_parse) echo 0 ;;
        tokenizer) echo 4096 ;;
        *) echo 512 ;;
    esac
}

# One build of every target (one cargo invocation, shared dependencies), so the
# runs below measure fuzzing only. Six targets at 45 s plus this build is about
# 7-8 minutes on 2 cores.
echo "=== build all fuzz targets ==="
cargo +nightly fuzz build

status=0
for t in "${TARGETS[@]}"; do
    echo "=== fuzz $t for ${SECS}s ==="
    mkdir -p "corpus/$t" "artifacts/$t"
    log="$(mktemp)"
    if ! cargo +nightly fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$SECS" -print_final_stats=1 -rss_limit_mb=2048 \
        -timeout=10 -max_len="$(max_len "$t")" -artifact_prefix="artifacts/$t/" \
        >"$log" 2>&1; then
        status=1
        tail -n 60 "$log"
        echo "fuzz_smoke: $t FAILED; crashing input(s):"
        ls -l "artifacts/$t/" || true
    else
        grep -E "^(stat::|#[0-9]+[[:space:]]+DONE)" "$log" || tail -n 5 "$log"
    fi
    rm -f "$log"
done
exit $status
