#!/usr/bin/env bash
# The main job: a WeDLM generation. Uses tencent/WeDLM-8B-Instruct when it is in the local
# Hugging Face cache; otherwise a tiny checkpoint with random weights that this script synthesises
# once (the real Qwen3 tokenizer, so text goes in and out, but the words are noise).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${WEDLM_BIN:-$here/build/release/src/cli/wedlm}"
prompt="${1:-Explain in two sentences why parallel decoding makes language models faster.}"
real_model="tencent/WeDLM-8B-Instruct"

if [ ! -x "$bin" ]; then
  echo "error: $bin is missing; build first: cmake --preset release && cmake --build --preset release" >&2
  exit 1
fi

if "$bin" inspect --model "$real_model" >/dev/null 2>&1; then
  exec "$bin" generate --model "$real_model" --chat --prompt "$prompt" --max-tokens 256
fi

demo="$here/demo/tiny-random"
if [ ! -f "$demo/model.safetensors" ]; then
  tokenizer_dir="$("$here/scripts/fetch_tokenizer.sh")"
  "$bin" synth --shape tiny --out "$demo" --tokenizer-dir "$tokenizer_dir" --seed 1
fi
cat >&2 <<MSG
NOTE: $real_model is not in the Hugging Face cache, so this runs a tiny demo checkpoint with
RANDOM weights ($demo): the pipeline is real, the text is noise. Get the real model with
  huggingface-cli download $real_model
and run this script again.
MSG
exec "$bin" generate --model "$demo" --chat --prompt "$prompt" --max-tokens 48
