#!/usr/bin/env bash
# Run the parser, arena, context, forward pass and scalar kernels under Miri
# (undefined behaviour, out-of-bounds and alignment checks on the unsafe arena
# carving and on unaligned weight reads). Heavy tests are #[cfg_attr(miri,
# ignore)]; what runs is a few minutes on the tiny fixture `a`.
#
#   bash tests/scripts/miri.sh
#
# Needs nightly with the miri and rust-src components (installed here if
# missing). Miri cannot use a configured cargo runner, so none may be set.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

if ! cargo +nightly miri --version >/dev/null 2>&1; then
    echo "miri.sh: installing nightly miri + rust-src"
    rustup toolchain install nightly --profile minimal
    rustup +nightly component add miri rust-src
fi
unset CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER
cargo +nightly miri setup

# The tests read fixtures through std::fs, which Miri's isolation forbids.
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation}"

start=$(date +%s)
# Library unit tests (whatever modules have them), then the bad-input contract
# (parser, model checks, arena sizes at every start alignment, context errors,
# kernels on unaligned rows) and the allocation test (load, Context::new into
# the arena, eval/eval_all/rewind on a.q8_0).
cargo +nightly miri test -p embergpt --lib
cargo +nightly miri test -p embergpt --test bad_input
cargo +nightly miri test -p embergpt --test no_alloc
end=$(date +%s)
echo "miri.sh: done in $((end - start)) s"
