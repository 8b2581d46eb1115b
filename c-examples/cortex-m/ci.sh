#!/bin/sh
# Everything CI runs for the Cortex-M port (from any directory):
#   1. build the QEMU instruction-count plugin (into c-examples/cortex-m/build/)
#   2. build and run the firmware on Cortex-M4F and Cortex-M55 (make run, run-m55) with
#      the default model (text in and out when it has a tokenizer), and again with a
#      Q4_0 fixture (token ids); each run's greedy token ids must equal the host C
#      API's (host_ref.c: the same greedy loop on the host) for the same model and prompt ids,
#      and embergpt's code must stay under 64 KiB of flash and the stack high-water
#      mark within STACK_BUDGET
#   3. the on-target kernel tests: cargo test --test cortex_m on both targets
#   4. instructions per MAC (make macs)
#   5. the core builds for thumbv6m-none-eabi (Cortex-M0+) and riscv32imac-unknown-none-elf
#
# CI must install: apt gcc-arm-none-eabi qemu-system-arm gcc make (installing
# qemu-system-arm removes qemu-utils, harmless here); rustup target add
# thumbv7em-none-eabihf thumbv8m.main-none-eabihf thumbv6m-none-eabi riscv32imac-unknown-none-elf.
# No newlib needed: the firmware links no C library.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
build=$here/build
mkdir -p "$build"
: "${MAKE:=make}"
# Stack high-water budget of the firmware runs, in bytes (see check_run).
: "${STACK_BUDGET:=6656}"

step() { printf '\n=== %s\n' "$*"; }

missing=""
for tool in arm-none-eabi-gcc qemu-system-arm; do
    command -v "$tool" > /dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    echo "cortex-m ci: missing$missing (apt install gcc-arm-none-eabi qemu-system-arm)" >&2
    [ -n "${CI:-}" ] && exit 1
    echo "SKIPPED: Cortex-M checks need$missing"
    exit 0
fi

step "host reference: the firmware's greedy decoding through the host C library"
$MAKE -C c-examples lib > "$build/host-build.log" 2>&1 || { cat "$build/host-build.log"; exit 1; }
native=$(sed -n 's/^NATIVE_LIBS ?= //p' c-examples/Makefile)
${HOSTCC:-cc} -std=c99 -O1 -Wall -Wextra -Werror -Wno-unused-function -Iinclude -Ic-examples -o "$build/host_ref" \
    "$here/host_ref.c" target/capi/release/libembergpt.a $native

# check_run NAME MODEL PROMPT_IDS N_GEN MAKE_ARGS...: run firmware, compare ids with the host.
check_run() {
    name=$1 model=$2 ids=$3 ngen=$4
    shift 4
    step "firmware $name: $(basename "$model")"
    $MAKE -s -C c-examples/cortex-m MODEL="$model" PROMPT_IDS="$ids" N_GEN="$ngen" "$@" \
        2>&1 | grep -v 'GNU-stack\|NOTE: This behaviour' | tee "$build/ci-$name.out"
    got=$(sed -n 's/^generated: *//p' "$build/ci-$name.out")
    # The prompt ids the firmware evaluated (tokenized on the target in text mode).
    pids=$(sed -n 's/^prompt: *//p' "$build/ci-$name.out")
    want=$("$build/host_ref" "$model" "$ngen" $pids |
        sed -n 's/^generated: *\([0-9 ]*\).*/\1/p' | tr -s ' ' | sed 's/ *$//')
    if [ -z "$got" ] || [ "$got" != "$want" ]; then
        echo "FAIL: $name generated [$got], host [$want]" >&2
        exit 1
    fi
    echo "ok: $name token ids equal the host's"
    # The issue's footprint goal: embergpt's code under 64 KiB of flash.
    code=$(sed -n 's/^ *embergpt code *(flash): *\([0-9]*\) bytes.*/\1/p' "$build/ci-$name.out")
    if [ -z "$code" ] || [ "$code" -ge 65536 ]; then
        echo "FAIL: $name: embergpt code is [$code] bytes, the budget is 65536 (64 KiB)" >&2
        exit 1
    fi
    echo "ok: $name embergpt code $code bytes < 64 KiB"
    # Stack: the firmware reserves 32 KB, but a regression shows long before
    # that (a 2 KB tile copy once took the high-water mark from 5.4 to 7.5 KB
    # unnoticed), so the budget sits ~700 B above today's largest (5.9 KB). Raise it on
    # purpose, with the reason in the commit, never to make CI pass.
    stack=$(sed -n 's/^ *stack high-water (RAM): *\([0-9]*\) bytes.*/\1/p' "$build/ci-$name.out")
    if [ -z "$stack" ] || [ "$stack" -gt "$STACK_BUDGET" ]; then
        echo "FAIL: $name: stack high-water is [$stack] bytes, the budget is $STACK_BUDGET" >&2
        exit 1
    fi
    echo "ok: $name stack high-water $stack bytes <= $STACK_BUDGET"
}

model=$(ls "$root/cli/assets/shakespeare-q8_0.gguf" 2> /dev/null || echo "$root/tests/fixtures/gpt2/b.q8_0.gguf")
ids=144,33,61,96,124,157,14,68
check_run m4 "$model" "$ids" 16 run
check_run m55 "$model" "$ids" 16 run-m55
q4=$root/tests/fixtures/gpt2/b.q4_0.gguf
check_run m4-q4_0 "$q4" "$ids" 16 BUILD="$build/q4_0" run
check_run m55-q4_0 "$q4" "$ids" 16 BUILD="$build/q4_0" run-m55

step "on-target kernel tests (QEMU runners in .cargo/config.toml)"
cargo test --target thumbv7em-none-eabihf --features dsp --test cortex_m
cargo test --target thumbv8m.main-none-eabihf --features dsp,helium --test cortex_m

step "instructions per MAC"
$MAKE -s -C c-examples/cortex-m macs

step "core builds for Cortex-M0+ and RISC-V"
cargo build --lib --no-default-features --target thumbv6m-none-eabi
cargo build --lib --no-default-features --target riscv32imac-unknown-none-elf

echo
echo "cortex-m ci: all passed"
