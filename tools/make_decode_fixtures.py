#!/usr/bin/env python3
"""Make the decoding fixtures: two tiny checkpoints and expected greedy token streams.

Runs where torch + transformers are (the GPU machine):
    python3 make_decode_fixtures.py --out DIR
writes DIR/decode_models/{qwen3_tiny,qwen2_tiny}/{config.json,model.safetensors}
and    DIR/decode/{qwen3_tiny,qwen2_tiny,window_replay}.json,
then   DIR/fixtures.tar.gz holding both folders (unpack into tests/fixtures/).

Expected outputs come from tools/wedlm_reference.py (written from DESIGN.md) over the
transformers Qwen3ForCausalLM / Qwen2ForCausalLM, computed in float64 (model.double()) from the
float32 weights stored in model.safetensors, with full recomputation each step.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wedlm_reference as ref  # noqa: E402

SCHEMA = "wedlm-decode-fixtures/1"
FRAGILE = {"entropy_margin": 1e-3, "argmin_gap": 1e-3, "logit_gap": 1e-4}

MODELS = {
    # Qwen3 shape: q/k RMSNorm, no bias, head_dim != hidden/heads, theta 1e6, single eos.
    "qwen3_tiny": {
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
        "vocab_size": 512, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 3,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "rope_scaling": None,
        "tie_word_embeddings": False, "attention_bias": False, "qk_norm": True,
        "mask_token_id": 510, "eos_token_id": 3, "bos_token_id": None,
        "max_position_embeddings": 4096, "hidden_act": "silu",
        "torch_dtype": "float32", "dtype": "float32", "use_sliding_window": False,
    },
    # Qwen2.5 shape: q/k/v bias, no q/k norm, head_dim = hidden/heads, theta 1e4, eos list.
    "qwen2_tiny": {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
        "vocab_size": 448, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "rope_scaling": None,
        "tie_word_embeddings": False, "attention_bias": True, "qk_norm": False,
        "mask_token_id": 446, "eos_token_id": [2, 5], "bos_token_id": None,
        "max_position_embeddings": 4096, "hidden_act": "silu",
        "torch_dtype": "float32", "dtype": "float32", "use_sliding_window": False,
    },
}

START = time.time()
LOG_LINES: list = []


def log(*parts) -> None:
    line = f"[{time.time() - START:7.1f}s] " + " ".join(str(p) for p in parts)
    print(line, flush=True)
    LOG_LINES.append(line)


def versions(device: str) -> dict:
    import safetensors
    import torch
    import transformers
    v = {"python": platform.python_version(), "torch": torch.__version__,
         "transformers": transformers.__version__, "safetensors": safetensors.__version__,
         "device": device}
    if device.startswith("cuda"):
        v["gpu"] = torch.cuda.get_device_name(0)
    return v


def eos_list(cfg: dict) -> list:
    e = cfg["eos_token_id"]
    return list(e) if isinstance(e, list) else [e]


# ----------------------------------------------------------------------------------------------
# tiny checkpoints

def init_weights(model, cfg: dict, seed: int) -> dict:
    """Seeded weights by HF name: activations O(1), norms and biases away from their defaults so
    that a loader that ignores them is caught. Returns the float32 state dict (lm_head unscaled)."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, t in sorted(model.state_dict().items()):
        shape = tuple(t.shape)
        if name.endswith("embed_tokens.weight"):
            w = torch.randn(shape, generator=gen)
        elif name.endswith("norm.weight"):
            w = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith(".bias"):
            w = 0.1 * torch.randn(shape, generator=gen)
        elif len(shape) == 2:
            w = torch.randn(shape, generator=gen) / math.sqrt(shape[1])
        else:
            raise RuntimeError(f"unexpected tensor {name} {shape}")
        state[name] = w.float().contiguous()
    return state


def check_rope(model, cfg: dict) -> None:
    import torch
    inv = None
    for name, buf in model.named_buffers():
        if name.endswith("inv_freq"):
            inv = buf.double().cpu()
            break
    d = cfg["head_dim"]
    want = torch.tensor([cfg["rope_theta"] ** (-2.0 * i / d) for i in range(d // 2)], dtype=torch.float64)
    if inv is None or inv.shape != want.shape or float((inv - want).abs().max() / want.max()) > 1e-6:
        raise RuntimeError(f"rope inv_freq mismatch: got {inv}, want theta={cfg['rope_theta']} d={d}")
    log("  rope inv_freq ok, theta", cfg["rope_theta"])


def build_model(name: str, cfg: dict, seed: int, device: str):
    import torch
    torch.manual_seed(seed)
    config = ref.hf_config(cfg)
    log(f"  {name}: transformers config:", json.dumps({k: v for k, v in config.to_dict().items()
                                                        if "rope" in k or "head" in k or "bias" in k}, default=str))
    model = ref.hf_model_class(cfg)(config)
    attn = ref.use_eager_attention(model)
    log(f"  {name}: attention implementation {attn}")
    q = model.model.layers[0].self_attn.q_proj.weight
    if tuple(q.shape) != (cfg["num_attention_heads"] * cfg["head_dim"], cfg["hidden_size"]):
        raise RuntimeError(f"q_proj shape {tuple(q.shape)} does not match head_dim")
    has_bias = model.model.layers[0].self_attn.q_proj.bias is not None
    has_qk_norm = hasattr(model.model.layers[0].self_attn, "q_norm")
    if has_bias != cfg["attention_bias"] or has_qk_norm != cfg["qk_norm"]:
        raise RuntimeError(f"{name}: bias {has_bias} / qk_norm {has_qk_norm} differ from config")
    check_rope(model, cfg)
    state = init_weights(model, cfg, seed)
    return model, state


def set_lm_head(model, state: dict, scale: float, device: str):
    s = dict(state)
    s["lm_head.weight"] = (state["lm_head.weight"] * scale).float().contiguous()
    model.load_state_dict({k: v.double() for k, v in s.items()}, strict=True)
    return s


# ----------------------------------------------------------------------------------------------
# self-checks: what the reference computes is what the engine computes

def self_checks(model, forward: ref.TorchModel, cfg: dict, device: str) -> dict:
    import torch
    rng = random.Random(7)
    vocab = cfg["vocab_size"]
    mask = cfg["mask_token_id"]
    checks = {}
    ids = [rng.randrange(vocab - 2) for _ in range(23)]
    with torch.no_grad():
        plain = model(input_ids=torch.tensor([ids], device=device)).logits[0]
    explicit = forward.logits(ids, list(range(len(ids))))
    checks["explicit_positions_vs_plain"] = float((plain - explicit).abs().max())

    # A reordered step: C, then filled slots at window indices 2 and 5, then masks at 0,1,3,4,6,7.
    C = ids[:15]
    order = [2, 5, 0, 1, 3, 4, 6, 7]
    rows = [ids[15], ids[16]] + [mask] * 6
    positions = list(range(len(C))) + [len(C) + i for i in order]
    full = forward.logits(C + rows, positions)[len(C):]
    with torch.no_grad():
        pre = model(input_ids=torch.tensor([C], device=device), use_cache=True)
        cached = model(input_ids=torch.tensor([rows], device=device),
                       position_ids=torch.tensor([positions[len(C):]], device=device),
                       past_key_values=pre.past_key_values, use_cache=True).logits[0]
    checks["full_recompute_vs_kv_cache"] = float((full - cached).abs().max())

    # Causal in row order, not in position order: changing the last row (lowest position among
    # the masks is not last) must not change any earlier row.
    rows2 = rows[:-1] + [(rows[-1] + 1) % (vocab - 2)]
    full2 = forward.logits(C + rows2, positions)[len(C):]
    checks["row_order_causality_earlier_rows"] = float((full[:-1] - full2[:-1]).abs().max())
    # ...and a row does see the rows before it even when they sit at higher positions.
    rows3 = [(rows[0] + 1) % (vocab - 2)] + rows[1:]
    full3 = forward.logits(C + rows3, positions)[len(C):]
    checks["row_order_sees_earlier_rows"] = float((full[2] - full3[2]).abs().max())

    ok = (checks["explicit_positions_vs_plain"] < 1e-9 and checks["full_recompute_vs_kv_cache"] < 1e-9
          and checks["row_order_causality_earlier_rows"] < 1e-12
          and checks["row_order_sees_earlier_rows"] > 1e-6)
    log("  self-checks", json.dumps(checks), "OK" if ok else "FAILED")
    if not ok:
        raise RuntimeError(f"self-check failed: {checks}")
    return checks


def check_from_pretrained(model_dir: str, model, device: str) -> str:
    """Does transformers itself read our hand-written config.json the same way? (informative)"""
    import torch
    try:
        import transformers
        other = transformers.AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float64)
        ref.use_eager_attention(other)
        other = other.to(device).eval()
        ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7, 8]], device=device)
        with torch.no_grad():
            d = float((other(input_ids=ids).logits - model(input_ids=ids).logits).abs().max())
        return f"max |diff| {d:.3g}"
    except Exception as e:  # informative only
        return f"failed: {type(e).__name__}: {e}"[:300]


# ----------------------------------------------------------------------------------------------
# cases

def prompts_for(cfg: dict, seed: int) -> list:
    rng = random.Random(seed)
    banned = set(eos_list(cfg)) | {cfg["mask_token_id"]}
    allowed = [t for t in range(cfg["vocab_size"]) if t not in banned]
    return [[rng.choice(allowed) for _ in range(n)] for n in (1, 7, 29)]


def case_record(case_id: str, mode: str, prompt: list, params: dict, r: ref.DecodeResult) -> dict:
    fragile = ((r.entropy_margin is not None and r.entropy_margin < FRAGILE["entropy_margin"])
               or (r.argmin_gap is not None and r.argmin_gap < FRAGILE["argmin_gap"])
               or (r.logit_gap is not None and r.logit_gap < FRAGILE["logit_gap"]))
    rec = {"id": case_id, "mode": mode, "prompt": prompt, "params": params,
           "output": list(r.output), "finish_reason": r.finish_reason, "forwards": r.forwards,
           "tokens_per_forward": round(r.tokens_per_forward, 6),
           "entropy_margin": r.entropy_margin, "argmin_gap": r.argmin_gap,
           "logit_gap": r.logit_gap, "fragile": bool(fragile)}
    if r.steps:
        rec["trace"] = [[s["commit_count"], s["filled"]] for s in r.steps]
    return rec


def run_wedlm(forward, cfg, prompt, *, window, tau, lam, max_tokens, stop_ids, kv_space, steps=True):
    return ref.wedlm_decode(forward, prompt, window=window, entropy_threshold=tau,
                            position_penalty=lam, mask_id=cfg["mask_token_id"],
                            max_tokens=max_tokens, stop_ids=stop_ids, kv_space=kv_space,
                            record_steps=steps)


def search_scale(model, forward, cfg, state, prompts, device) -> tuple:
    """lm_head scale whose default-parameter decoding commits ~3 tokens per forward."""
    table = []
    for scale in (2, 4, 6, 8, 11, 16, 22, 32, 45, 64):
        set_lm_head(model, state, scale, device)
        toks = fwd = 0
        below = total = 0
        for p in prompts:
            r = run_wedlm(forward, cfg, p, window=16, tau=0.4, lam=0.02, max_tokens=32,
                          stop_ids=[], kv_space=None)
            toks += len(r.output)
            fwd += r.forwards
            for s in r.steps:
                total += len(s["mask_entropy"])
                below += sum(1 for h in s["mask_entropy"] if h < 0.4)
        tpf = toks / fwd
        table.append({"scale": scale, "tokens_per_forward": round(tpf, 4),
                      "mask_rows_entropy_below_0.4": round(below / max(total, 1), 4)})
        log(f"  scale {scale:3}: tokens/forward {tpf:.3f}, masks with H<0.4: {below}/{total}")
    best = min(table, key=lambda t: abs(t["tokens_per_forward"] - 3.0))
    return best["scale"], table


def make_model_cases(name, cfg, model, forward, budget_s) -> list:
    cases = []
    prompts = prompts_for(cfg, seed=hash_seed(name, 1))
    max_cycle = [24, 32, 48]
    k = 0
    grid = []
    for pi, prompt in enumerate(prompts):
        for window in (1, 4, 16, 32):
            for tau in (0.0, 0.4, 0.8, 1.5):
                for lam in (0.0, 0.02, 0.05):
                    if window == 1 and (tau, lam) != (0.4, 0.02):
                        continue  # one mask per step: tau and lambda cannot matter
                    grid.append((pi, prompt, window, tau, lam))
    for pi, prompt, window, tau, lam in grid:
        if time.time() - START > budget_s:
            log(f"  time budget reached; {name}: stopping the grid at {len(cases)} cases")
            break
        max_tokens = max_cycle[k % 3]
        k += 1
        base = f"{name}/wedlm/w{window}_t{tau}_l{lam}_p{len(prompt)}_m{max_tokens}"
        r = run_wedlm(forward, cfg, prompt, window=window, tau=tau, lam=lam, max_tokens=max_tokens,
                      stop_ids=[], kv_space=None)
        params = {"window": window, "entropy_threshold": tau, "position_penalty": lam,
                  "max_tokens": max_tokens, "stop_ids": [], "kv_space": None, "temperature": 0.0}
        cases.append(case_record(base, "wedlm", prompt, params, r))
        # Same parameters with stops: eos plus a token from the middle of the stop-less output.
        # Decisions before the stop is committed cannot depend on it, so the output must be the
        # stop-less output cut after the first stop token — checked here.
        stop = r.output[len(r.output) // 2]
        stops = eos_list(cfg) + ([stop] if stop not in eos_list(cfg) else [])
        rs = run_wedlm(forward, cfg, prompt, window=window, tau=tau, lam=lam, max_tokens=max_tokens,
                       stop_ids=stops, kv_space=None)
        cut = next(i for i, t in enumerate(r.output) if t in stops) + 1
        if rs.output != r.output[:cut] or rs.finish_reason != "stop":
            raise RuntimeError(f"{base}: stop run {rs.output} is not the prefix {r.output[:cut]}")
        cases.append(case_record(base + "_stop", "wedlm", prompt, dict(params, stop_ids=stops), rs))

    # KV space smaller than the output: the window shrinks and the sequence ends with "length".
    for window, kv_space in ((16, 5), (16, 12), (16, 23), (4, 3), (32, 40)):
        for prompt in prompts[1:]:
            r = run_wedlm(forward, cfg, prompt, window=window, tau=0.8, lam=0.02, max_tokens=48,
                          stop_ids=[], kv_space=kv_space)
            if len(r.output) != min(48, kv_space) or r.finish_reason != "length":
                raise RuntimeError(f"kv_space case ended with {len(r.output)} tokens")
            params = {"window": window, "entropy_threshold": 0.8, "position_penalty": 0.02,
                      "max_tokens": 48, "stop_ids": [], "kv_space": kv_space, "temperature": 0.0}
            cases.append(case_record(f"{name}/wedlm/w{window}_kv{kv_space}_p{len(prompt)}", "wedlm",
                                     prompt, params, r))

    # AR greedy.
    for prompt in prompts:
        for max_tokens, with_stop in ((32, False), (48, True)):
            r = ref.ar_decode(forward, prompt, max_tokens=max_tokens, stop_ids=[])
            stops = []
            if with_stop:
                stop = r.output[len(r.output) // 2]
                stops = eos_list(cfg) + ([stop] if stop not in eos_list(cfg) else [])
                r = ref.ar_decode(forward, prompt, max_tokens=max_tokens, stop_ids=stops)
            params = {"max_tokens": max_tokens, "stop_ids": stops, "temperature": 0.0}
            cases.append(case_record(f"{name}/ar/p{len(prompt)}_m{max_tokens}" + ("_stop" if with_stop else ""),
                                     "ar", prompt, params, r))
    return cases


def hash_seed(name: str, salt: int) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(name)) * 1000 + salt


def window_replay_cases(cfg, forward, name, cases) -> list:
    """Full per-step records for a few non-fragile cases, for the C++ window-only replay test."""
    picks = []
    wanted = [("w16_t0.4_l0.02", False), ("w16_t0.4_l0.02", True), ("w4_t0.8_l0.05", False),
              ("w32_t1.5_l0.0", True), ("w16_t0.0_l0.02", False), ("w1_", False),
              ("w16_kv12", False), ("w4_kv3", False), ("w32_t0.8_l0.0", False)]
    for key, stop in wanted:
        for c in cases:
            if (c["mode"] == "wedlm" and key in c["id"] and c["id"].endswith("_stop") == stop
                    and not c["fragile"]):
                picks.append(c)
                break
    out = []
    for c in picks:
        p = c["params"]
        r = run_wedlm(forward, cfg, c["prompt"], window=p["window"], tau=p["entropy_threshold"],
                      lam=p["position_penalty"], max_tokens=p["max_tokens"], stop_ids=p["stop_ids"],
                      kv_space=p["kv_space"])
        assert r.output == c["output"]
        out.append({"id": c["id"], "mask_token_id": cfg["mask_token_id"], "prompt_length": len(c["prompt"]),
                    "params": p, "output": c["output"], "finish_reason": c["finish_reason"],
                    "entropy_margin": c["entropy_margin"], "argmin_gap": c["argmin_gap"],
                    "steps": r.steps})
    return out


def summarize(cases) -> dict:
    w = [c for c in cases if c["mode"] == "wedlm"]
    return {"cases": len(cases), "wedlm": len(w), "ar": len(cases) - len(w),
            "fragile": sum(c["fragile"] for c in cases),
            "mean_tokens_per_forward_wedlm": round(sum(c["tokens_per_forward"] for c in w) / max(len(w), 1), 4),
            "mean_tokens_per_forward_w16_t0.4_l0.02": round(
                (lambda s: sum(s) / max(len(s), 1))([c["tokens_per_forward"] for c in w
                                                     if "w16_t0.4_l0.02_" in c["id"]]), 4)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget-s", type=float, default=300.0, help="stop adding grid cases after this")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    vers = versions(device)
    log("versions", json.dumps(vers))
    out_models = os.path.join(args.out, "decode_models")
    out_cases = os.path.join(args.out, "decode")
    os.makedirs(out_cases, exist_ok=True)
    replay = []
    all_summary = {}
    failed = False
    try:
        generate(args, device, vers, out_models, out_cases, replay, all_summary)
    except Exception:
        import traceback
        log("FAILED:\n" + traceback.format_exc())
        failed = True
    with open(os.path.join(out_cases, "window_replay.json"), "w") as f:
        json.dump({"schema": SCHEMA + "/window-replay", "versions": vers,
                   "note": "per-step rows/entropies/tokens of the reference, for replaying the window "
                           "logic alone; entropies are float64 (cast to float32 by the C++ test)",
                   "cases": replay}, f, separators=(",", ":"))
    log("summary", json.dumps(all_summary))
    with open(os.path.join(args.out, "log.txt"), "w") as f:
        f.write("\n".join(LOG_LINES) + "\n")
    with tarfile.open(os.path.join(args.out, "fixtures.tar.gz"), "w:gz") as tar:
        if os.path.isdir(out_models):
            tar.add(out_models, arcname="decode_models")
        tar.add(out_cases, arcname="decode")
    log("done" if not failed else "done WITH FAILURE")
    return 1 if failed else 0


def generate(args, device, vers, out_models, out_cases, replay, all_summary) -> None:
    names = list(MODELS)
    failures = []
    for mi, name in enumerate(names):
        try:
            generate_model(args, device, vers, out_models, out_cases, replay, all_summary, mi, name)
        except Exception:
            import traceback
            log(f"FAILED {name}:\n" + traceback.format_exc())
            failures.append(name)
    if failures:
        raise RuntimeError(f"failed: {failures}")


def generate_model(args, device, vers, out_models, out_cases, replay, all_summary, mi, name) -> None:
    import torch
    from safetensors.torch import load_file, save_file
    names = list(MODELS)
    cfg = MODELS[name]
    log(f"== {name}")
    model, state = build_model(name, cfg, seed=hash_seed(name, 0), device=device)
    model = model.double().to(device).eval()
    forward = ref.TorchModel(model, device)
    scale, table = search_scale(model, forward, cfg, state, prompts_for(cfg, seed=hash_seed(name, 2)), device)
    log(f"  chosen lm_head scale {scale}")
    final = set_lm_head(model, state, scale, device)
    mdir = os.path.join(out_models, name)
    os.makedirs(mdir, exist_ok=True)
    save_file(final, os.path.join(mdir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(mdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    # Reload what was written: the fixtures are computed from the stored float32 weights.
    cfg2, model = ref.load_model(mdir, device)
    forward = ref.TorchModel(model, device)
    back = load_file(os.path.join(mdir, "model.safetensors"))
    assert all(torch.equal(back[k], final[k]) for k in final)
    checks = self_checks(model, forward, cfg, device)
    fp = check_from_pretrained(mdir, model, device)
    log("  from_pretrained on our config.json:", fp)
    cases = make_model_cases(name, cfg, model, forward, args.budget_s * (mi + 1) / len(names))
    replay += window_replay_cases(cfg, forward, name, cases)
    summary = summarize(cases)
    all_summary[name] = summary
    log(f"  {name}: {json.dumps(summary)}; forwards run {forward.calls}")
    doc = {"schema": SCHEMA, "generator": "tools/make_decode_fixtures.py (reference: tools/wedlm_reference.py)",
           "compute": "float64: model.double() of the float32 weights in model.safetensors; eager attention; "
                      "RoPE angles in float32 as transformers computes them; full recomputation of [C, rows] each step with explicit position_ids; greedy",
           "versions": vers,
           "model": {"name": name, "dir": f"tests/fixtures/decode_models/{name}", "lm_head_scale": scale,
                     "scale_search": table, "mask_token_id": cfg["mask_token_id"],
                     "eos_token_id": cfg["eos_token_id"], "vocab_size": cfg["vocab_size"]},
           "self_checks": checks, "from_pretrained_check": fp,
           "fragile_thresholds": FRAGILE,
           "counting": "wedlm: forwards = decode steps (prefill not counted); "
                       "ar: forwards = forwards after the prefill (the prefill's last row gives the "
                       "first token), i.e. len(output)-1",
           "summary": summary, "cases": cases}
    with open(os.path.join(out_cases, f"{name}.json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))


if __name__ == "__main__":
    sys.exit(main())
