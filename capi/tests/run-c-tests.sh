#!/usr/bin/env bash
# Builds libveil, then compiles the C tests in capi/tests/c with cc against it and the
# committed header, and runs them:
#   1. linked with libveil.a, under valgrind (memcheck, leaks are errors);
#   2. linked with libveil.a and built with -fsanitize=address (ASan + LeakSanitizer);
#   3. one test linked with the installed shared library through pkg-config, checking that
#      it loads libveil.so.0 by its soname.
# usage: capi/tests/run-c-tests.sh   (from anywhere; honours CARGO_TARGET_DIR)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

tests=(roundtrip vectors handshake misuse)
cc=${CC:-cc}
cflags=(-std=c11 -Wall -Wextra -Werror -g -Icapi/include)
native_libs=(-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)

if ! command -v valgrind >/dev/null 2>&1; then
  echo "valgrind missing: installing it"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq valgrind >/dev/null; else sudo apt-get install -y -qq valgrind >/dev/null; fi
fi

cargo build -p veil-capi --locked
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
build="$target_dir/capi-c-tests"
rm -rf "$build"
mkdir -p "$build"
python3 capi/tests/c/gen_vectors.py "$build/vectors.h"
static_lib="$target_dir/debug/libveil.a"

for t in "${tests[@]}"; do
  echo "--- $t: libveil.a under valgrind"
  "$cc" "${cflags[@]}" -I"$build" "capi/tests/c/$t.c" "$static_lib" "${native_libs[@]}" -o "$build/$t"
  valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,possible \
    "$build/$t"
done

for t in "${tests[@]}"; do
  echo "--- $t: libveil.a with AddressSanitizer"
  "$cc" "${cflags[@]}" -fsanitize=address -fno-omit-frame-pointer -I"$build" "capi/tests/c/$t.c" \
    "$static_lib" "${native_libs[@]}" -o "$build/$t-asan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 "$build/$t-asan"
done

echo "--- roundtrip: installed libveil.so through pkg-config"
prefix="$build/prefix"
capi/install.sh --debug --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
read -r -a pc_flags <<<"$(pkg-config --cflags --libs veil)"
"$cc" -std=c11 -Wall -Wextra -Werror "capi/tests/c/roundtrip.c" "${pc_flags[@]}" -o "$build/roundtrip-shared"
readelf -d "$build/roundtrip-shared" | grep -q 'Shared library: \[libveil.so.0\]' ||
  { echo "roundtrip-shared does not load libveil.so.0 by its soname" >&2; exit 1; }
LD_LIBRARY_PATH="$prefix/lib" "$build/roundtrip-shared"
echo "C tests passed: ${tests[*]} (valgrind, ASan), shared library via pkg-config $(pkg-config --modversion veil)"
