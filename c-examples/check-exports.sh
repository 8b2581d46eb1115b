#!/bin/sh
# Every function the header declares is exported by the static and the shared library,
# and the shared library exports no other egpt_ symbol the header does not declare.
#   check-exports.sh HEADER STATIC_LIB SHARED_LIB
set -eu
header=$1
static=$2
shared=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Declared functions: "egpt_name(" at a declaration (return type before it).
grep -oE '^[a-z_0-9 ]+[ *]egpt_[a-z_0-9]+\(' "$header" | sed -E 's/.*(egpt_[a-z_0-9]+)\($/\1/' | sort -u > "$tmp/declared"
nm -g --defined-only "$static" 2>/dev/null | awk '$2 == "T" {print $3}' | grep '^egpt_' | sort -u > "$tmp/static"
nm -D --defined-only "$shared" | awk '$2 == "T" {print $3}' | grep '^egpt_' | sort -u > "$tmp/shared"
n=$(wc -l < "$tmp/declared")
if [ "$n" -lt 20 ]; then
    echo "check-exports: only $n functions found in $header (parse error?)" >&2
    exit 1
fi
fail=0
for f in $(cat "$tmp/declared"); do
    grep -qx "$f" "$tmp/static" || { echo "check-exports: $f missing from $static" >&2; fail=1; }
    grep -qx "$f" "$tmp/shared" || { echo "check-exports: $f missing from $shared" >&2; fail=1; }
done
for f in $(cat "$tmp/shared"); do
    grep -qx "$f" "$tmp/declared" || { echo "check-exports: $f exported but not declared" >&2; fail=1; }
done
[ "$fail" -eq 0 ] && echo "check-exports: all $n declared functions exported by both libraries"
exit $fail
