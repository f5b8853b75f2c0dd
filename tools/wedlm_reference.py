#!/usr/bin/env python3
"""Reference of WeDLM streaming parallel decoding and of AR greedy decoding.

Written from shared/DESIGN.md ("WeDLM streaming parallel decoding — exact semantics" and
"Counting"), independently of the C++ in src/decode/. Greedy (temperature 0) only.

The decoding loops are pure Python over a `forward(ids, positions, wanted_rows)` callable that
returns one RowStats per wanted row, so they can be checked without a model. `TorchModel` is that
callable for a transformers Qwen3ForCausalLM / Qwen2ForCausalLM: it recomputes the whole
sequence [C, rows] every step (no KV cache) with causal attention in row order and explicit
position_ids, which is what the engine computes with its cache.

KV space (how the engine bounds the window, see DESIGN.md): `kv_space` is the number of cache
slots the sequence may use after its prompt. A step's rows may never exceed the slots left,
kv_space - len(output): the first window has min(W, kv_space) slots, a refill appends
min(p, kv_space - len(output) - len(window)) masks, and the sequence finishes with "length" when
len(output) reaches kv_space.

Command line (prints a JSON object):
  wedlm_reference.py --model DIR --prompt-ids 1,2,3 [--ar] [--window 16 --threshold 0.4 ...]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

MASK = None  # a window slot that holds no token yet


@dataclass
class RowStats:
    """What decoding reads from one logits row."""
    entropy: float    # -sum p log p of softmax(raw logits), natural log
    token: int        # argmax, lowest id on ties
    logit_gap: float  # top-1 minus top-2 logit (how fragile the argmax is)


Forward = Callable[[Sequence[int], Sequence[int], Sequence[int]], list]


@dataclass
class DecodeResult:
    output: list
    finish_reason: str
    forwards: int
    # Smallest |A_j - tau| over every mask of every step whose fill was decided (None if tau <= 0:
    # entropies are >= 0, so "A < 0" can never flip).
    entropy_margin: Optional[float] = None
    # Smallest gap between the smallest and second-smallest A in steps that used the argmin
    # fallback (None if it never decided between two masks).
    argmin_gap: Optional[float] = None
    # Smallest top-1 minus top-2 logit gap among rows whose token was used.
    logit_gap: Optional[float] = None
    steps: list = field(default_factory=list)  # per-step record, see wedlm_decode

    @property
    def tokens_per_forward(self) -> float:
        return len(self.output) / self.forwards if self.forwards else 0.0


def _min(current: Optional[float], value: float) -> float:
    return value if current is None else min(current, value)


def wedlm_decode(forward: Forward, prompt: Sequence[int], *, window: int, entropy_threshold: float,
                 position_penalty: float, mask_id: int, max_tokens: int,
                 stop_ids: Sequence[int] = (), kv_space: Optional[int] = None,
                 record_steps: bool = False) -> DecodeResult:
    if window < 1 or max_tokens < 1 or entropy_threshold < 0 or position_penalty < 0:
        raise ValueError("bad WeDLM parameters")
    if kv_space is not None and kv_space < 1:
        raise ValueError("kv_space must be >= 1")
    space = math.inf if kv_space is None else kv_space
    stops = set(stop_ids)
    committed = list(prompt)  # C: prompt + committed output; the engine's cache holds these
    output: list = []
    slots: list = [MASK] * int(min(window, space))
    result = DecodeResult(output=output, finish_reason="", forwards=0)

    while True:
        # a. Refill: p leading filled slots will be committed by this step; append p masks,
        #    but never more rows than cache slots left.
        p = 0
        while p < len(slots) and slots[p] is not MASK:
            p += 1
        room = space - len(output) - len(slots)
        slots.extend([MASK] * int(min(p, room)))

        # b. Topological reordering: filled slots in window order, then masks in window order.
        filled_at = [i for i, s in enumerate(slots) if s is not MASK]
        masks_at = [i for i, s in enumerate(slots) if s is MASK]
        order = filled_at + masks_at
        row_tokens = [mask_id if slots[i] is MASK else slots[i] for i in order]
        row_offsets = list(order)  # logical position = len(C) + window index

        # c. One forward over [C, rows]; only the mask rows' logits are read.
        ids = committed + row_tokens
        positions = list(range(len(committed))) + [len(committed) + i for i in row_offsets]
        first_mask_row = len(committed) + len(filled_at)
        mask_stats = forward(ids, positions, list(range(first_mask_row, len(ids)))) if masks_at else []
        result.forwards += 1
        step = {"rows": [[t, o] for t, o in zip(row_tokens, row_offsets)], "commit_count": p,
                "mask_entropy": [s.entropy for s in mask_stats],
                "mask_token": [s.token for s in mask_stats]}

        # d. Commit the p leading filled slots in order.
        finish = None
        before = len(output)
        for i in range(p):
            token = slots[i]
            output.append(token)
            committed.append(token)
            if token in stops:
                finish = "stop"  # the stop token is kept
            elif len(output) >= max_tokens or len(output) >= space:
                finish = "length"
            if finish:
                break
        step["committed"] = output[before:]
        if finish:
            # Slots filled in an earlier step but not yet committed are dropped, as is the fill
            # this step would have done.
            if record_steps:
                step["filled"] = []
                result.steps.append(step)
            result.finish_reason = finish
            return result

        # e. Fill masks whose adjusted entropy is strictly below tau; else the argmin (first).
        filled_now: list = []
        if masks_at:
            first = masks_at[0]
            adjusted = [s.entropy + position_penalty * (w - first) for s, w in zip(mask_stats, masks_at)]
            chosen = [k for k, a in enumerate(adjusted) if a < entropy_threshold]
            if entropy_threshold > 0:
                result.entropy_margin = _min(result.entropy_margin,
                                             min(abs(a - entropy_threshold) for a in adjusted))
            if not chosen:
                best = min(range(len(adjusted)), key=lambda k: (adjusted[k], k))
                chosen = [best]
                if len(adjusted) > 1:
                    ranked = sorted(adjusted)
                    result.argmin_gap = _min(result.argmin_gap, ranked[1] - ranked[0])
            for k in chosen:
                slots[masks_at[k]] = mask_stats[k].token
                result.logit_gap = _min(result.logit_gap, mask_stats[k].logit_gap)
                filled_now.append(masks_at[k])
        if record_steps:
            step["filled"] = filled_now  # window indices before the commit shifted the window
            result.steps.append(step)
        del slots[:p]


def ar_decode(forward: Forward, prompt: Sequence[int], *, max_tokens: int,
              stop_ids: Sequence[int] = ()) -> DecodeResult:
    """Greedy next-token decoding. The prefill's last row gives the first token and is not counted
    as a forward; every later token costs one forward (DESIGN.md "Counting")."""
    if max_tokens < 1 or len(prompt) < 1:
        raise ValueError("bad AR parameters")
    stops = set(stop_ids)
    committed = list(prompt)
    output: list = []
    result = DecodeResult(output=output, finish_reason="", forwards=0)
    stats = forward(committed, list(range(len(committed))), [len(committed) - 1])[0]
    while True:
        result.logit_gap = _min(result.logit_gap, stats.logit_gap)
        output.append(stats.token)
        committed.append(stats.token)
        if stats.token in stops:
            result.finish_reason = "stop"
            return result
        if len(output) >= max_tokens:
            result.finish_reason = "length"
            return result
        stats = forward(committed, list(range(len(committed))), [len(committed) - 1])[0]
        result.forwards += 1


# ----------------------------------------------------------------------------------------------
# transformers model (imported lazily so the loops above run without torch)

def hf_config(cfg: dict):
    """A transformers config from our config.json keys. transformers 5 wants rope_parameters,
    4.x rope_theta; try the first, fall back to the second."""
    import transformers
    arch = cfg["model_type"]
    cls = {"qwen3": transformers.Qwen3Config, "qwen2": transformers.Qwen2Config}[arch]
    common = dict(vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
                  intermediate_size=cfg["intermediate_size"],
                  num_hidden_layers=cfg["num_hidden_layers"],
                  num_attention_heads=cfg["num_attention_heads"],
                  num_key_value_heads=cfg["num_key_value_heads"], head_dim=cfg["head_dim"],
                  rms_norm_eps=cfg["rms_norm_eps"], hidden_act=cfg["hidden_act"],
                  max_position_embeddings=cfg["max_position_embeddings"],
                  tie_word_embeddings=cfg["tie_word_embeddings"], use_sliding_window=False,
                  eos_token_id=cfg["eos_token_id"])
    if arch == "qwen3":
        common["attention_bias"] = cfg["attention_bias"]
    theta = float(cfg["rope_theta"])
    last_error = None
    for rope in ({"rope_parameters": {"rope_type": "default", "rope_theta": theta}},
                 {"rope_theta": theta}):
        kwargs = dict(common, **rope)
        dropped = {}
        for _ in range(len(kwargs)):
            try:
                config = cls(**kwargs)
            except TypeError as e:  # an argument this version does not take: set it afterwards
                last_error = e
                bad = next((k for k in kwargs if f"'{k}'" in str(e)), None)
                if bad is None or bad in rope:
                    break
                dropped[bad] = kwargs.pop(bad)
                continue
            for k, v in dropped.items():
                setattr(config, k, v)
            return config
    raise RuntimeError(f"cannot build {cls.__name__}: {last_error}")
    return config


def hf_model_class(cfg: dict):
    import transformers
    return {"qwen3": transformers.Qwen3ForCausalLM, "qwen2": transformers.Qwen2ForCausalLM}[cfg["model_type"]]


def use_eager_attention(model) -> str:
    try:
        model.set_attn_implementation("eager")
    except Exception:  # older/newer API: fall back to the config field
        model.config._attn_implementation = "eager"
    return str(getattr(model.config, "_attn_implementation", "?"))


def load_model(model_dir: str, device: str = "cpu"):
    """Our tiny checkpoint (config.json + model.safetensors) as a float64 transformers model."""
    from safetensors.torch import load_file
    with open(f"{model_dir}/config.json") as f:
        cfg = json.load(f)
    model = hf_model_class(cfg)(hf_config(cfg))
    state = load_file(f"{model_dir}/model.safetensors")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if "rotary" not in m]:
        raise RuntimeError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    use_eager_attention(model)
    return cfg, model.double().to(device).eval()


class TorchModel:
    """forward(ids, positions, wanted_rows) -> [RowStats] by full recomputation in float64."""

    def __init__(self, model, device: str):
        self.model = model
        self.device = device
        self.calls = 0

    def logits(self, ids, positions):
        import torch
        with torch.no_grad():
            input_ids = torch.tensor([list(ids)], device=self.device)
            # An explicit all-ones attention mask keeps transformers from reading non-monotonic
            # position_ids as packed sequences; the mask is then causal in row order.
            out = self.model(input_ids=input_ids,
                             position_ids=torch.tensor([list(positions)], device=self.device),
                             attention_mask=torch.ones_like(input_ids), use_cache=False)
        return out.logits[0]

    def __call__(self, ids, positions, wanted):
        import torch
        self.calls += 1
        rows = self.logits(ids, positions)[list(wanted)].double()
        logp = torch.log_softmax(rows, dim=-1)
        entropy = -(logp.exp() * logp).sum(-1)
        top = torch.topk(rows, 2, dim=-1).values
        token = torch.argmax(rows, dim=-1)  # first maximal index on ties
        return [RowStats(float(h), int(t), float(g)) for h, t, g in
                zip(entropy.tolist(), token.tolist(), (top[:, 0] - top[:, 1]).tolist())]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt-ids", required=True, help="comma-separated token ids")
    ap.add_argument("--ar", action="store_true", help="AR greedy instead of WeDLM")
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--threshold", type=float, default=0.4)
    ap.add_argument("--penalty", type=float, default=0.02)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--stop-ids", default="", help="comma-separated; default: none")
    ap.add_argument("--kv-space", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    cfg, model = load_model(args.model, args.device)
    forward = TorchModel(model, args.device)
    prompt = [int(x) for x in args.prompt_ids.split(",") if x]
    stops = [int(x) for x in args.stop_ids.split(",") if x]
    if args.ar:
        r = ar_decode(forward, prompt, max_tokens=args.max_tokens, stop_ids=stops)
    else:
        r = wedlm_decode(forward, prompt, window=args.window, entropy_threshold=args.threshold,
                         position_penalty=args.penalty, mask_id=cfg["mask_token_id"],
                         max_tokens=args.max_tokens, stop_ids=stops, kv_space=args.kv_space)
    json.dump({"output": r.output, "finish_reason": r.finish_reason, "forwards": r.forwards,
               "tokens_per_forward": r.tokens_per_forward}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
