#!/usr/bin/env bash
# fetch-ort.sh installs the ONNX Runtime shared library that medgr2 loads.
#
# It takes the official onnxruntime-node npm tarball (which ships
# libonnxruntime.so.1 for linux x64 and arm64), checks its pinned sha256,
# and extracts only the library for this machine into third_party/ort/.
# It never runs the package's install script: `npm pack` only downloads.
#
# Usage: scripts/fetch-ort.sh [DEST]   (DEST defaults to third_party/ort)
set -euo pipefail

ORT_VERSION=1.30.0
ORT_TARBALL_SHA256=6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/third_party/ort}

case "$(uname -m)" in
  x86_64|amd64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) echo "fetch-ort: unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac

if [ -f "$dest/libonnxruntime.so.1" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$ORT_VERSION-$arch" ]; then
  echo "fetch-ort: $dest/libonnxruntime.so.1 ($ORT_VERSION, $arch) already present"
  exit 0
fi

command -v npm >/dev/null || { echo "fetch-ort: npm is required (apt-get install npm)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
tarball="$work/onnxruntime-node-$ORT_VERSION.tgz"
got=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$got" != "$ORT_TARBALL_SHA256" ]; then
  echo "fetch-ort: checksum mismatch for onnxruntime-node-$ORT_VERSION.tgz: got $got, want $ORT_TARBALL_SHA256" >&2
  exit 1
fi
member="package/bin/napi-v6/linux/$arch/libonnxruntime.so.1"
tar -xzf "$tarball" -C "$work" "$member"
mkdir -p "$dest"
install -m 0644 "$work/$member" "$dest/libonnxruntime.so.1"
echo "$ORT_VERSION-$arch" > "$dest/VERSION"
echo "fetch-ort: installed ONNX Runtime $ORT_VERSION ($arch) to $dest/libonnxruntime.so.1"
