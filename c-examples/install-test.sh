#!/bin/sh
# Install into a temporary prefix, then build and run generate.c against the
# installed files: with pkg-config (shared and --static) and with CMake's
# find_package(embergpt). Run by `make -C c-examples test`.
set -eu
ex=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$ex/.." && pwd)
model="$root/tests/fixtures/gpt2/a.q8_0.gguf"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
make -s -C "$ex" install PREFIX="$prefix"
for f in include/embergpt.h lib/libembergpt.a lib/libembergpt.so lib/pkgconfig/embergpt.pc \
         lib/cmake/embergpt/embergptConfig.cmake lib/cmake/embergpt/embergptConfigVersion.cmake; do
    [ -f "$prefix/$f" ] || { echo "install-test: $f not installed" >&2; exit 1; }
done

if command -v pkg-config > /dev/null 2>&1; then
    export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
    pkg-config --exists embergpt
    echo "pkg-config --cflags --libs embergpt: $(pkg-config --cflags --libs embergpt)"
    [ "$(pkg-config --modversion embergpt)" = "$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)" ]
    # shared
    ${CC:-cc} -std=c99 -Wall -Wextra -Werror -pedantic -I"$ex" "$ex/generate.c" \
        $(pkg-config --cflags --libs embergpt) -Wl,-rpath,"$prefix/lib" -o "$tmp/generate_shared"
    # static: link the archive itself (a -l would pick the .so) plus Libs.private
    ${CC:-cc} -std=c99 -Wall -Wextra -Werror -pedantic -I"$ex" "$ex/generate.c" \
        $(pkg-config --cflags embergpt) "$prefix/lib/libembergpt.a" \
        $(pkg-config --static --libs-only-l embergpt | sed 's/-lembergpt//') -o "$tmp/generate_static"
    "$tmp/generate_shared" "$model" 4 > "$tmp/shared.out"
    "$tmp/generate_static" "$model" 4 > "$tmp/static.out"
    cmp "$tmp/shared.out" "$tmp/static.out"
    ldd "$tmp/generate_shared" | grep -q "$prefix/lib/libembergpt.so"
    echo "install-test: pkg-config shared and static builds agree"
elif [ -n "${CI:-}" ]; then
    echo "install-test: pkg-config missing (CI must install it)" >&2
    exit 1
else
    echo "SKIPPED: install-test pkg-config part: pkg-config not installed"
fi

if command -v cmake > /dev/null 2>&1; then
    cmake -S "$ex/dist/consumer" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
        -DEXAMPLES_DIR="$ex" -DCMAKE_BUILD_TYPE=Release > "$tmp/cmake.log" \
        || { cat "$tmp/cmake.log"; exit 1; }
    cmake --build "$tmp/cmake-build" > "$tmp/cmake-build.log" || { cat "$tmp/cmake-build.log"; exit 1; }
    "$tmp/cmake-build/generate_shared" "$model" 4 > "$tmp/cmake_shared.out"
    "$tmp/cmake-build/generate_static" "$model" 4 > "$tmp/cmake_static.out"
    cmp "$tmp/cmake_shared.out" "$tmp/cmake_static.out"
    echo "install-test: CMake find_package(embergpt) shared and static builds agree"
elif [ -n "${CI:-}" ]; then
    echo "install-test: cmake missing (CI must install it)" >&2
    exit 1
else
    echo "SKIPPED: install-test CMake part: cmake not installed"
fi
