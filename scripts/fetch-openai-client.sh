#!/usr/bin/env bash
# fetch-openai-client.sh installs the official `openai` npm client into
# third_party/openai-client (git-ignored) for the server's end-to-end test
# of /v1/chat/completions. Install scripts are never run.
#
# Usage: scripts/fetch-openai-client.sh [DEST]   (DEST defaults to third_party/openai-client)
set -euo pipefail

OPENAI_VERSION=7.57.0

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/third_party/openai-client}

if [ -f "$dest/node_modules/openai/package.json" ] && grep -q "\"version\": \"$OPENAI_VERSION\"" "$dest/node_modules/openai/package.json"; then
  echo "fetch-openai-client: openai $OPENAI_VERSION already in $dest"
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-openai-client: npm is required (apt-get install npm)" >&2; exit 1; }
mkdir -p "$dest"
cd "$dest"
[ -f package.json ] || echo '{"name":"medgr2-openai-client","private":true}' > package.json
npm install --ignore-scripts --no-audit --no-fund --save-exact "openai@$OPENAI_VERSION"
echo "fetch-openai-client: installed openai $OPENAI_VERSION in $dest"
