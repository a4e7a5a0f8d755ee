#!/usr/bin/env bash
# Builds libveil and installs it for C and C++ builds:
#   PREFIX/lib/libveil.so.X.Y.Z, libveil.so.X -> it (the soname), libveil.so -> libveil.so.X
#   PREFIX/lib/libveil.a
#   PREFIX/include/veil.h
#   PREFIX/lib/pkgconfig/veil.pc   (version from Cargo)
# usage: capi/install.sh [--debug] [--prefix DIR]     (default prefix /usr/local; release build)
# Then: cc app.c $(pkg-config --cflags --libs veil)   (add PREFIX/lib/pkgconfig to
# PKG_CONFIG_PATH if it is not a standard location; --static links libveil.a)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

prefix=/usr/local
profile=release
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --debug) profile=debug; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$profile" = release ]; then
  cargo build -p veil-capi --release --locked
else
  cargo build -p veil-capi --locked
fi
target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
built="$target_dir/$profile"
version=$(cargo pkgid -p veil-capi | sed 's/.*[@#]//')
major=${version%%.*}

mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
install -m 0755 "$built/libveil.so" "$prefix/lib/libveil.so.$version"
ln -sf "libveil.so.$version" "$prefix/lib/libveil.so.$major"
ln -sf "libveil.so.$major" "$prefix/lib/libveil.so"
install -m 0644 "$built/libveil.a" "$prefix/lib/libveil.a"
install -m 0644 capi/include/veil.h "$prefix/include/veil.h"
# Libs.private: what `rustc --print native-static-libs` lists for libveil.a on Linux.
cat > "$prefix/lib/pkgconfig/veil.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: veil
Description: Veil end-to-end encrypted media: SFrame (RFC 9605), protected packets, the participant key handshake
Version: $version
Libs: -L\${libdir} -lveil
Libs.private: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
Cflags: -I\${includedir}
PC
echo "installed libveil $version ($profile) under $prefix"
