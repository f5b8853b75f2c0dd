#!/usr/bin/env python3
"""Load benchmark for a running `wedlm serve` (or any OpenAI-compatible server).

Standard library only. For each concurrency level, C client threads send streamed requests
back to back until the level's request count is done, and the script reports throughput and
latency percentiles:

  TTFT  time to first token: request sent -> first chunk carrying text or token ids
  ITL   inter-token latency: gap between consecutive content chunks (WeDLM commits several
        tokens per step, so one chunk may hold several tokens)
  TPOT  time per output token after the first: (last chunk - first chunk) / (tokens - 1)
  E2E   request sent -> [DONE]

Example:
  wedlm serve --model MODEL --port 8080 &
  scripts/serve_bench.py --url http://127.0.0.1:8080 --concurrency 1,4,16,64 --max-tokens 128
"""
import argparse
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse

DEFAULT_PROMPT = "Write a short story about a robot who learns to paint."


def percentile(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def build_body(args, index):
    body = {"max_tokens": args.max_tokens, "stream": True, "temperature": args.temperature,
            "stream_options": {"include_usage": True}, "return_token_ids": True}
    if args.model:
        body["model"] = args.model
    if args.mode:
        body["mode"] = args.mode
    if args.ignore_eos:
        body["ignore_eos"] = True
    if args.window:
        body["wedlm_window"] = args.window
    if args.prompt_ids:
        ids = [int(x) for x in args.prompt_ids.split(",")]
        # A different last token per request keeps the prefix cache from serving whole prompts.
        body["prompt"] = ids if args.same_prompt else ids[:-1] + [(ids[-1] + index) % 1000 + 1]
        return "/v1/completions", body
    text = args.prompt if args.same_prompt else f"{args.prompt} (request {index})"
    if args.chat:
        body["messages"] = [{"role": "user", "content": text}]
        return "/v1/chat/completions", body
    body["prompt"] = text
    return "/v1/completions", body


def chunk_has_content(event):
    for choice in event.get("choices", []):
        if choice.get("text") or choice.get("token_ids"):
            return True
        delta = choice.get("delta") or {}
        if delta.get("content"):
            return True
    return False


def one_request(args, url, index):
    path, body = build_body(args, index)
    conn_cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(url.hostname, url.port or (443 if url.scheme == "https" else 80), timeout=args.timeout)
    headers = {"Content-Type": "application/json"}
    if args.api_key:
        headers["Authorization"] = "Bearer " + args.api_key
    result = {"ok": False, "ttft": None, "itl": [], "tokens": 0, "e2e": None, "error": None}
    start = time.perf_counter()
    try:
        conn.request("POST", url.path.rstrip("/") + path, body=json.dumps(body), headers=headers)
        resp = conn.getresponse()
        if resp.status != 200:
            result["error"] = f"HTTP {resp.status}: {resp.read()[:200]!r}"
            return result
        last = None
        chunk_times = []
        while True:
            line = resp.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            data = line[6:]
            if data == b"[DONE]":
                result["ok"] = True
                break
            event = json.loads(data)
            now = time.perf_counter()
            if event.get("usage"):
                result["tokens"] = event["usage"]["completion_tokens"]
            if chunk_has_content(event):
                chunk_times.append(now)
                if last is None:
                    result["ttft"] = now - start
                else:
                    result["itl"].append(now - last)
                last = now
        result["e2e"] = time.perf_counter() - start
        if len(chunk_times) >= 2 and result["tokens"] > 1:
            result["tpot"] = (chunk_times[-1] - chunk_times[0]) / (result["tokens"] - 1)
        if not result["ok"]:
            result["error"] = "stream ended without [DONE]"
    except Exception as e:  # a failed request is counted, not fatal
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        conn.close()
    return result


def run_level(args, url, concurrency, requests):
    results = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker():
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            r = one_request(args, url, index)
            with lock:
                results.append(r)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ok = [r for r in results if r["ok"]]
    tokens = sum(r["tokens"] for r in ok)
    itl = [x for r in ok for x in r["itl"]]
    summary = {
        "concurrency": concurrency, "requests": requests, "ok": len(ok), "errors": len(results) - len(ok),
        "wall_s": wall, "requests_per_s": len(ok) / wall if wall else 0.0,
        "output_tokens": tokens, "output_tokens_per_s": tokens / wall if wall else 0.0,
    }
    for name, values in (("ttft_ms", [r["ttft"] for r in ok if r["ttft"] is not None]), ("itl_ms", itl),
                         ("tpot_ms", [r["tpot"] for r in ok if r.get("tpot") is not None]),
                         ("e2e_ms", [r["e2e"] for r in ok if r["e2e"] is not None])):
        summary[name] = {p: 1e3 * percentile(values, p) for p in (50, 90, 99)}
        summary[name]["mean"] = 1e3 * statistics.fmean(values) if values else float("nan")
    errors = [r["error"] for r in results if not r["ok"]]
    if errors:
        summary["first_error"] = errors[0]
    return summary


def fetch_metrics(args, url):
    try:
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=10)
        conn.request("GET", url.path.rstrip("/") + "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--api-key", default="")
    p.add_argument("--model", default="", help="model name to send (default: none, the server's)")
    p.add_argument("--concurrency", default="1,4,16,64", help="comma-separated levels")
    p.add_argument("--requests", type=int, default=0, help="requests per level (default: max(8, 4 x concurrency))")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--prompt", default=DEFAULT_PROMPT)
    p.add_argument("--prompt-ids", default="", help="comma-separated token ids instead of text (models without tokenizer)")
    p.add_argument("--chat", action="store_true", help="use /v1/chat/completions")
    p.add_argument("--mode", choices=["wedlm", "ar"], default=None)
    p.add_argument("--window", type=int, default=0)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--no-ignore-eos", dest="ignore_eos", action="store_false",
                   help="stop at eos (default: ignore it, so every request makes max-tokens tokens)")
    p.add_argument("--same-prompt", action="store_true", help="identical prompts (prefix cache hits)")
    p.add_argument("--warmup", type=int, default=1, help="requests before measuring")
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--json", default="", help="also write the results to this file")
    args = p.parse_args()
    url = urllib.parse.urlparse(args.url)

    for i in range(args.warmup):
        r = one_request(args, url, 10_000 + i)
        if not r["ok"]:
            sys.exit(f"warm-up request failed: {r['error']}")

    levels = [int(x) for x in args.concurrency.split(",") if x]
    header = (f"{'conc':>4} {'ok':>5} {'err':>4} {'req/s':>7} {'tok/s':>8} | {'TTFT p50':>8} {'p90':>7} {'p99':>7} | "
              f"{'ITL p50':>7} {'p90':>7} {'p99':>7} | {'TPOT p50':>8} | {'E2E p50':>8} {'p99':>8}  (ms)")
    print(f"server {args.url}, {args.max_tokens} max tokens per request, "
          f"mode {args.mode or 'server default'}, temperature {args.temperature}")
    print(header)
    all_results = []
    for c in levels:
        before = fetch_metrics(args, url)
        s = run_level(args, url, c, args.requests or max(8, 4 * c))
        after = fetch_metrics(args, url)
        fw = after.get("wedlm_forwards_total", 0) - before.get("wedlm_forwards_total", 0)
        ct = after.get("wedlm_completion_tokens_total", 0) - before.get("wedlm_completion_tokens_total", 0)
        if fw > 0:
            s["tokens_per_forward"] = ct / fw
        all_results.append(s)
        print(f"{c:>4} {s['ok']:>5} {s['errors']:>4} {s['requests_per_s']:>7.2f} {s['output_tokens_per_s']:>8.1f} | "
              f"{s['ttft_ms'][50]:>8.1f} {s['ttft_ms'][90]:>7.1f} {s['ttft_ms'][99]:>7.1f} | "
              f"{s['itl_ms'][50]:>7.1f} {s['itl_ms'][90]:>7.1f} {s['itl_ms'][99]:>7.1f} | {s['tpot_ms'][50]:>8.2f} | "
              f"{s['e2e_ms'][50]:>8.1f} {s['e2e_ms'][99]:>8.1f}"
              + (f"   tokens/forward {s['tokens_per_forward']:.2f}" if "tokens_per_forward" in s else ""), flush=True)
        if s["errors"]:
            print(f"     first error: {s.get('first_error')}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "levels": all_results}, f, indent=2)
    sys.exit(1 if any(s["errors"] for s in all_results) else 0)


if __name__ == "__main__":
    main()
