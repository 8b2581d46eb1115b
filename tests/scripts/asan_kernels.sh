#!/usr/bin/env bash
# The SIMD kernel tests (tests/kernels.rs: every kernel of every backend this CPU
# runs against scalar, batched GEMMs, matmul with threads, forced-backend golden
# logits) under AddressSanitizer. Miri cannot run the x86 kernels (it has no
# F16C), and an out-of-bounds or misaligned access that happens to change no
# result passes every other test: the first run of this script found an aligned
# store to a 2-byte-aligned stack buffer in the AVX2 Q8_0 prefill.
#
#   bash tests/scripts/asan_kernels.sh
#
# Needs nightly (-Zsanitizer), installed here if missing. Skipped:
# - kernels_fit_a_128_kib_thread_stack: ASan's stack redzones make every frame
#   larger, so the 128 KiB thread overflows by design;
# - leak checking: std_thread_pool_runs_every_task_once leaks a pool on purpose
#   (`ThreadPool::leak`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "asan_kernels.sh: installing nightly"
    rustup toolchain install nightly --profile minimal
fi
host=$(rustc -vV | sed -n 's/^host: //p')
if [ "$host" != "x86_64-unknown-linux-gnu" ]; then
    echo "SKIPPED: asan_kernels.sh runs on x86_64 Linux hosts (this is $host)"
    exit 0
fi
start=$(date +%s)
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros; its
# own target directory keeps the instrumented build apart from the normal one.
RUSTFLAGS="-Zsanitizer=address" CARGO_TARGET_DIR="$ROOT/target/asan" \
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1" \
    cargo +nightly test --release --features std --target x86_64-unknown-linux-gnu \
    --test kernels -- --skip kernels_fit_a_128_kib_thread_stack
end=$(date +%s)
echo "asan_kernels.sh: done in $((end - start)) s"
