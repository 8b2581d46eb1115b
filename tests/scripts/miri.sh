#!/usr/bin/env bash
# Run the parser, arena, context, forward pass, scalar kernels, tokenizer,
# sampler and generation loop under Miri
# (undefined behaviour, out-of-bounds and alignment checks on the unsafe arena
# carving and on unaligned weight reads). Heavy tests are #[cfg_attr(miri,
# ignore)]; what runs takes a few minutes of CPU on the tiny fixture `a`.
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

# libm's default "arch" feature computes sqrtf with inline assembly, which Miri
# cannot run; its portable version is the same IEEE-exact square root.
FEAT=(--features libm/force-soft-floats)

start=$(date +%s)
# Library unit tests (whatever modules have them), then the bad-input contract:
# the parser and model checks on hostile files, Context::new carving the arena
# at two start alignments, parameter and token errors, the scalar kernels on
# unaligned rows and with short operands, and one forward pass (two tokens of
# the Q4_0 model `a`: about a minute of Miri CPU per token). Tests that evaluate
# more are #[cfg_attr(miri, ignore)].
cargo +nightly miri test -p embergpt "${FEAT[@]}" --lib
cargo +nightly miri test -p embergpt "${FEAT[@]}" --test bad_input
# Text side (tests/miri_text.rs): the tokenizer built from the bundled 512-token
# model in an odd-aligned arena, a few strings encoded, decoded and stream-decoded;
# the sampler on 6-logit rows; two greedy tokens generated on fixture `a` (two
# forward passes, the bulk of its time).
cargo +nightly miri test -p embergpt "${FEAT[@]}" --test miri_text
end=$(date +%s)
echo "miri.sh: done in $((end - start)) s"
