#!/bin/sh
# Instructions per multiply-accumulate of a 64 x 512 matrix-vector product with
# Q8_0 and Q4_0 weights (Q8_0 activations, 32768 MACs) on Cortex-M4F and
# Cortex-M55 under QEMU: the release build of tests/cortex_m.rs in probe mode (a
# word QEMU preloads selects 4 = setup only, 1 = scalar reference as LLVM compiles
# it, 2 = DSP, 3 = Helium; 5..8 the same for Q4_0). The DSP and Helium modes run
# the batched kernel on all 64 rows in one call, which is what kernels::matmul
# does for one activation row (decode); the activation quantization is not counted.
# cost = (total(mode) - total(setup only)) / 32768. QEMU counts instructions, not cycles.
# Then the activation quantization: one 768-value row to Q8_0 / Q8_1 (modes 9 = setup only,
# 10 / 11 / 14 = Q8_0 scalar / Helium / DSP, 12 / 13 / 15 = Q8_1), instructions per row.
#   macs.sh PLUGIN
set -eu
plugin=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
macs=32768

# The release build of tests/cortex_m.rs for $target with $features, in $exe.
build() {
    exe=$(cargo test --release --target "$target" --features "$features" --test cortex_m --no-run \
        --message-format=json 2>/dev/null | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
    [ -n "$exe" ] || { echo "macs: build failed for $target" >&2; exit 1; }
}

# Instructions QEMU counts for one run of $exe in probe mode $1.
count() {
    f=$(mktemp)
    INSNCOUNT_OUT=$f qemu-system-arm $qargs -nographic -semihosting-config enable=on,target=native \
        -plugin "$plugin" -d plugin -D /dev/null \
        -device loader,addr="$addr",data="$1",data-len=4 -kernel "$exe" > /dev/null 2>&1
    sed -n 's/.*total=\([0-9]*\).*/\1/p' "$f"
    rm -f "$f"
}

probe() { # target features qemu-args addr label modes...
    target=$1 features=$2 qargs=$3 addr=$4 label=$5
    shift 5
    build
    base8=$(count 4)
    base4=$(count 8)
    for m in "$@"; do
        case $m in
        1) k="Q8_0 scalar (LLVM)";; 2) k="Q8_0 dsp";; 3) k="Q8_0 helium";;
        5) k="Q4_0 scalar (LLVM)";; 6) k="Q4_0 dsp";; 7) k="Q4_0 helium";;
        esac
        if [ "$m" -le 4 ]; then base=$base8; else base=$base4; fi
        t=$(count "$m")
        if [ -z "$t" ] || [ -z "$base" ]; then echo "macs: no count for mode $m" >&2; exit 1; fi
        awk -v l="$label" -v k="$k" -v d="$((t - base))" -v n=$macs \
            'BEGIN { printf "%-11s %-19s %8d instructions  %.3f per MAC\n", l, k, d, d / n }'
    done
}

echo "matrix-vector product x Q8_0 activations, 64 rows x 512 columns (QEMU instruction counts, not cycles):"
probe thumbv7em-none-eabihf dsp "-machine mps2-an386 -cpu cortex-m4" 0x21000000 "Cortex-M4F" 1 2 5 6
probe thumbv8m.main-none-eabihf dsp,helium "-machine mps3-an547 -cpu cortex-m55" 0x60000000 "Cortex-M55" 1 2 3 5 6 7

# quant target features qemu-args addr label modes...: one 768-value row quantized.
quant() {
    target=$1 features=$2 qargs=$3 addr=$4 label=$5
    shift 5
    build
    base=$(count 9)
    for m in "$@"; do
        case $m in
        10) k="Q8_0 scalar (LLVM)";; 11) k="Q8_0 helium";;
        12) k="Q8_1 scalar (LLVM)";; 13) k="Q8_1 helium";;
        14) k="Q8_0 dsp";; 15) k="Q8_1 dsp";;
        esac
        t=$(count "$m")
        if [ -z "$t" ] || [ -z "$base" ]; then echo "macs: no count for mode $m" >&2; exit 1; fi
        awk -v l="$label" -v k="$k" -v d="$((t - base))" \
            'BEGIN { printf "%-11s %-19s %8d instructions  %.2f per value\n", l, k, d, d / 768 }'
    done
}

echo "activation quantization, one 768-value row (QEMU instruction counts, not cycles):"
quant thumbv7em-none-eabihf dsp "-machine mps2-an386 -cpu cortex-m4" 0x21000000 "Cortex-M4F" 10 14 12 15
quant thumbv8m.main-none-eabihf dsp,helium "-machine mps3-an547 -cpu cortex-m55" 0x60000000 "Cortex-M55" 10 11 12 13 14 15
