#!/bin/sh
# Install into a temporary prefix, then build generate.c (text) and greedy.c (ids)
# against the installed files: with pkg-config (shared and --static) and with CMake's
# find_package(embergpt), and run them: greedy on the fixture model, generate on the
# text model ($TEXT_MODEL, default the bundled model) when it exists.
# Run by `make -C c-examples test`.
set -eu
ex=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$ex/.." && pwd)
model="$root/tests/fixtures/gpt2/a.q8_0.gguf"
text_model="${TEXT_MODEL:-$root/cli/assets/shakespeare-q8_0.gguf}"
# run_pair NAME A B: run both builds of one program, outputs must agree.
run_pair() {
    "$2" "$model" 4 > "$tmp/$1.a.out"
    "$3" "$model" 4 > "$tmp/$1.b.out"
    cmp "$tmp/$1.a.out" "$tmp/$1.b.out"
}
run_text_pair() {
    if [ -f "$text_model" ]; then
        "$2" "$text_model" "ROMEO:" 16 > "$tmp/$1.a.out"
        "$3" "$text_model" "ROMEO:" 16 > "$tmp/$1.b.out"
        cmp "$tmp/$1.a.out" "$tmp/$1.b.out"
    else
        echo "install-test: $text_model not found, $1 built but not run"
    fi
}
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
    for prog in generate greedy; do
        # shared
        ${CC:-cc} -std=c99 -Wall -Wextra -Werror -pedantic -I"$ex" "$ex/$prog.c" \
            $(pkg-config --cflags --libs embergpt) -Wl,-rpath,"$prefix/lib" -o "$tmp/${prog}_shared"
        # static: link the archive itself (a -l would pick the .so) plus Libs.private
        ${CC:-cc} -std=c99 -Wall -Wextra -Werror -pedantic -I"$ex" "$ex/$prog.c" \
            $(pkg-config --cflags embergpt) "$prefix/lib/libembergpt.a" \
            $(pkg-config --static --libs-only-l embergpt | sed 's/-lembergpt//') -o "$tmp/${prog}_static"
    done
    run_pair greedy "$tmp/greedy_shared" "$tmp/greedy_static"
    run_text_pair generate "$tmp/generate_shared" "$tmp/generate_static"
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
    run_pair cmake-greedy "$tmp/cmake-build/greedy_shared" "$tmp/cmake-build/greedy_static"
    run_text_pair cmake-generate "$tmp/cmake-build/generate_shared" "$tmp/cmake-build/generate_static"
    echo "install-test: CMake find_package(embergpt) shared and static builds agree"
elif [ -n "${CI:-}" ]; then
    echo "install-test: cmake missing (CI must install it)" >&2
    exit 1
else
    echo "SKIPPED: install-test CMake part: cmake not installed"
fi
