#!/bin/sh
# Run a firmware ELF under QEMU and report: its output, instructions per generated
# token (QEMU instruction-count plugin, two runs: N tokens and 1 token; QEMU counts
# instructions, not cycles), and the footprint (embergpt code/rodata in flash, from
# the linker map; model flash; arena RAM; stack high-water mark from the firmware).
#   run.sh NAME "QEMU ARGS" ELF PARAM_ADDR N_GEN PLUGIN SIZE_TOOL
# Exits nonzero unless the firmware exits 0 and prints OK.
set -eu
name=$1 qemu=$2 elf=$3 param=$4 ngen=$5 plugin=$6 size=$7
build=$(dirname "$elf")
# QEMU (7.2) writes the semihosting console to its stderr: captured in $out.
out=$build/run-$name.out
cnt=$build/insn-$name

status=0
INSNCOUNT_OUT=$cnt.n $qemu -plugin "$plugin" -d plugin -D "$build/qemu-$name.log" \
    -kernel "$elf" 2> "$out" || status=$?
cat "$out"
if [ "$status" -ne 0 ] || ! grep -q '^OK$' "$out"; then
    echo "FAIL: firmware-$name exited with status $status" >&2
    exit 1
fi
if [ "$ngen" -gt 1 ]; then
    INSNCOUNT_OUT=$cnt.1 $qemu -plugin "$plugin" -d plugin -D "$build/qemu-$name.log" \
        -device loader,addr="$param",data=1,data-len=4 -kernel "$elf" 2> /dev/null
    tn=$(sed -n 's/.*total=\([0-9]*\).*/\1/p' "$cnt.n")
    t1=$(sed -n 's/.*total=\([0-9]*\).*/\1/p' "$cnt.1")
    echo "instructions: $tn total for $ngen tokens; $(( (tn - t1) / (ngen - 1) )) per generated token (QEMU instruction count, not cycles)"
fi

map=${elf%.elf}.map
# Sum the input sections that came from libembergpt.a, by kind, from the GNU ld map.
awk -v elf="$elf" '
    function hex(h,   i, c, v) {
        v = 0
        h = tolower(substr(h, 3))
        for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
        return v
    }
    function kind(s) {
        if (s ~ /^\.text/) return "text";
        if (s ~ /^\.rodata/) return "rodata";
        if (s ~ /^\.data/) return "data";
        if (s ~ /^\.bss/ || s ~ /^COMMON/) return "bss";
        return "";
    }
    /^Linker script and memory map/ { mapped = 1 }
    !mapped { next }
    /^ \.[A-Za-z]|^ COMMON/ {
        sec = $1
        if (NF >= 4 && $2 ~ /^0x/) { size = hex($3); file = $4 } else { pending = 1; next }
    }
    pending && /^ +0x/ { pending = 0; size = hex($2); file = $3 }
    file != "" {
        if (file ~ /libembergpt\.a\(/ && kind(sec) != "") lib[kind(sec)] += size
        file = ""
    }
    END {
        printf "footprint (%s):\n", elf
        printf "  embergpt code  (flash): %7d bytes (%.1f KiB) .text from libembergpt.a\n", lib["text"], lib["text"] / 1024
        printf "  embergpt rodata(flash): %7d bytes\n", lib["rodata"]
        printf "  embergpt data+bss (RAM): %6d bytes\n", lib["data"] + lib["bss"]
    }' "$map"
"$size" -A "$elf" | awk '
    $1 == ".model" { printf "  model          (flash): %7d bytes\n", $2 }
    $1 == ".arena" { printf "  arena            (RAM): %7d bytes\n", $2 }
    $1 == ".text" || $1 == ".rodata" || $1 == ".vectors" { all += $2 }
    END { printf "  all code+rodata(flash): %7d bytes (firmware total, model excluded)\n", all }'
sed -n 's/^stack: \([0-9]*\) of \([0-9]*\).*/  stack high-water (RAM): \1 bytes (of \2 reserved)/p' "$out"
