#!/usr/bin/env bash
# Serving benchmark with random weights of a real shape: starts `wedlm serve --model synthetic:SHAPE`,
# runs scripts/serve_bench.py in AR and WeDLM mode at several concurrency levels, stops the server.
# Usage: tools/serve_bench_synthetic.sh WEDLM_BINARY [shape=8b] [device=cuda] [concurrency=1,4,16,64]
#        [temperatures=0] [modes="ar wedlm"]   (temperatures comma-separated: each is a run per mode)
set -euo pipefail
bin=${1:?path to the wedlm binary}
shape=${2:-8b}
device=${3:-cuda}
levels=${4:-1,4,16,64}
temperatures=${5:-0}
modes=${6:-ar wedlm}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log=$(mktemp)
"$bin" serve --model "synthetic:$shape" --device "$device" --port 0 --context 1024 --max-sequences 64 --max-batch-rows 2048 \
  >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 600); do
  grep -q "listening on" "$log" && break
  kill -0 $server 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.5
done
url=$(grep -o "http://[0-9.:]*" "$log" | head -1)
echo "server: $url (synthetic $shape on $device)"
prompt_ids=$(python3 -c "print(','.join(str(7 + 13 * i % 150000) for i in range(64)))")
for temperature in ${temperatures//,/ }; do
  for mode in $modes; do
    echo "== mode $mode, temperature $temperature"
    python3 "$here/scripts/serve_bench.py" --url "$url" --concurrency "$levels" --max-tokens 128 \
      --prompt-ids "$prompt_ids" --mode "$mode" --temperature "$temperature"
  done
done
