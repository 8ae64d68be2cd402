#!/usr/bin/env bash
# Installs the Codex CLI from npm (@openai/codex@VERSION) for the end-to-end tests and prints the
# path of its native binary. Reused when present.
#
#   test/e2e/install-codex.sh VERSION...
#
# Goes to ${CORDON_CODEX_DIR:-$HOME/.cache/cordon-reference}/VERSION (the reference install
# script's layout, so one cache serves both).
set -euo pipefail
ROOT=${CORDON_CODEX_DIR:-$HOME/.cache/cordon-reference}
for VERSION in "$@"; do
  DIR=$ROOT/$VERSION
  find_bin() { find "$DIR/node_modules/@openai" -path '*codex-linux-*' -path '*/bin/codex' -type f -size +1M 2>/dev/null | head -n 1; }
  BIN=$(find_bin || true)
  if [ -z "$BIN" ]; then
    mkdir -p "$DIR"
    [ -f "$DIR/package.json" ] || echo '{"private":true}' > "$DIR/package.json"
    (cd "$DIR" && npm install --no-audit --no-fund --silent "@openai/codex@$VERSION" >&2)
    BIN=$(find_bin || true)
  fi
  [ -n "$BIN" ] || { echo "codex install failed: no codex binary under $DIR" >&2; exit 1; }
  echo "$BIN"
done
