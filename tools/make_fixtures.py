#!/usr/bin/env python3
"""Tiny reference checkpoints and expected logits for the forward-pass tests.

Runs on the GPU machine (torch + transformers 5.x); the outputs are committed under
tests/fixtures/models/ and the C++ tests read them without Python.

The references are transformers' Qwen3ForCausalLM (q/k norm, no bias) and Qwen2ForCausalLM
(q/k/v bias, no q/k norm), run in float64 on the checkpoint's exact weights (bf16 weights are
upcast exactly), with an explicit 4-D mask that is causal in row order and explicit position_ids,
which is precisely what the engine computes for a WeDLM window. For bf16 checkpoints the logits of
a native bf16 run are stored too, for the bf16 GPU backend.

Usage: python3 tools/make_fixtures.py --out tests/fixtures/models
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import transformers
from safetensors.torch import save_file

VOCAB = 512
MASK_ID = 500
EOS_ID = 2

# name: (architecture, dtype, tied, hidden, heads, kv_heads, head_dim or None, layers, intermediate, theta)
MODELS = {
    "qwen3_f32_untied_gqa_hd32": ("qwen3", torch.float32, False, 64, 4, 2, 32, 2, 96, 1e6),
    "qwen3_bf16_tied_mha": ("qwen3", torch.bfloat16, True, 64, 4, 4, None, 2, 128, 1e6),
    "qwen2_f32_tied_gqa": ("qwen2", torch.float32, True, 64, 4, 1, None, 2, 96, 1e4),
    "qwen2_bf16_untied_gqa_hd24": ("qwen2", torch.bfloat16, False, 48, 4, 2, 24, 3, 80, 1e6),
    "qwen3_f16_untied_gqa": ("qwen3", torch.float16, False, 64, 8, 2, None, 2, 96, 1e6),
}


def make_config(arch, tied, hidden, heads, kv, head_dim, layers, inter, theta):
    cls = transformers.Qwen3Config if arch == "qwen3" else transformers.Qwen2Config
    kwargs = dict(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                  num_attention_heads=heads, num_key_value_heads=kv, rms_norm_eps=1e-6,
                  max_position_embeddings=512, tie_word_embeddings=tied, hidden_act="silu",
                  eos_token_id=EOS_ID, bos_token_id=None, use_sliding_window=False)
    # Qwen3Config's own default head_dim is 128, not hidden/heads: always pass it.
    kwargs["head_dim"] = head_dim or hidden // heads
    if arch == "qwen3":
        kwargs["attention_bias"] = False
    try:
        cfg = cls(rope_parameters={"rope_type": "default", "rope_theta": theta}, **kwargs)
    except TypeError:
        cfg = cls(rope_theta=theta, **kwargs)
    cfg._attn_implementation = "eager"
    return cfg


def hf_config_json(arch, dtype, tied, hidden, heads, kv, head_dim, layers, inter, theta):
    """config.json with the keys DESIGN.md lists (transformers 5 would write rope_parameters)."""
    cfg = {
        "architectures": ["Qwen3ForCausalLM" if arch == "qwen3" else "Qwen2ForCausalLM"],
        "model_type": arch,
        "vocab_size": VOCAB, "hidden_size": hidden, "intermediate_size": inter,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv,
        "rms_norm_eps": 1e-6, "rope_theta": theta, "rope_scaling": None,
        "tie_word_embeddings": tied, "attention_bias": arch == "qwen2", "hidden_act": "silu",
        "mask_token_id": MASK_ID, "eos_token_id": EOS_ID, "max_position_embeddings": 512,
        "torch_dtype": {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype],
    }
    if arch == "qwen3":
        cfg["qk_norm"] = True
    if head_dim is not None:
        cfg["head_dim"] = head_dim
    return cfg


def cast_parameters(model, dtype):
    """Casts weights only: Module.to() would also round the float32 rotary frequencies buffer,
    which from_pretrained never does."""
    for p in model.parameters():
        p.data = p.data.to(dtype)
    return model


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(0.8 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / (p.shape[1] ** 0.5))


def causal_mask(n, dtype):
    mask = torch.full((n, n), torch.finfo(dtype).min, dtype=dtype)
    mask = torch.triu(mask, diagonal=1)
    return mask[None, None]


def reference_logits(model, ids, positions):
    dtype = next(model.parameters()).dtype
    ids_t = torch.tensor([ids], dtype=torch.long)
    pos_t = torch.tensor([positions], dtype=torch.long)
    with torch.no_grad():
        out = model(input_ids=ids_t, position_ids=pos_t, attention_mask=causal_mask(len(ids), dtype), use_cache=False)
    return out.logits[0].to(torch.float64).numpy()


def write_logits(path, logits):
    np.ascontiguousarray(logits, dtype="<f4").tofile(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    print("torch", torch.__version__, "transformers", transformers.__version__, flush=True)
    rng = np.random.default_rng(1234)
    for seed, (name, spec) in enumerate(MODELS.items()):
        arch, dtype, tied, hidden, heads, kv, head_dim, layers, inter, theta = spec
        out_dir = os.path.join(args.out, name)
        os.makedirs(out_dir, exist_ok=True)
        cfg = make_config(arch, tied, hidden, heads, kv, head_dim, layers, inter, theta)
        cls = transformers.Qwen3ForCausalLM if arch == "qwen3" else transformers.Qwen2ForCausalLM
        model = cls(cfg).to(torch.float32).eval()
        randomize(model, 100 + seed)
        cast_parameters(model, dtype)  # round the weights to the checkpoint dtype once
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        if tied:
            state.pop("lm_head.weight", None)
        save_file(state, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump(hf_config_json(*spec), f, indent=2)
        with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
            json.dump({"eos_token_id": [EOS_ID, 3]}, f, indent=2)

        ref = cast_parameters(model, torch.float64).eval()
        # Self-checks: the rotary frequencies are the plain ones, and the explicit 4-D mask equals
        # the library's own causal mask when positions are 0..n-1.
        d = head_dim or hidden // heads
        inv = ref.model.rotary_emb.inv_freq.to(torch.float64).numpy()
        expect_inv = 1.0 / (theta ** (np.arange(0, d, 2) / d))
        assert inv.shape == expect_inv.shape and np.allclose(inv, expect_inv, rtol=1e-6), (inv, expect_inv)
        probe = rng.integers(0, VOCAB, 10).tolist()
        with torch.no_grad():
            plain = ref(input_ids=torch.tensor([probe]), use_cache=False).logits[0].numpy()
        mine = reference_logits(ref, probe, list(range(10)))
        assert np.abs(plain - mine).max() < 1e-9, np.abs(plain - mine).max()

        native = None
        if dtype != torch.float32:
            native = cast_parameters(cls(cfg), dtype).eval()
            result = native.load_state_dict(
                {k: v.to(dtype) for k, v in ref.state_dict().items() if "inv_freq" not in k}, strict=False)
            assert not result.unexpected_keys and all("inv_freq" in k for k in result.missing_keys), result

        cases = []

        def add_case(case_name, steps, full_ids, full_positions, rows_of_interest):
            """steps: list of {ids, positions, cache_start, logit_rows}; expected logits are rows of one
            full forward over full_ids/full_positions (the sequence the cache should hold)."""
            full = reference_logits(ref, full_ids, full_positions)
            expected = full[rows_of_interest]
            fname = f"{case_name}.f32"
            write_logits(os.path.join(out_dir, fname), expected)
            case = {"name": case_name, "steps": steps, "expected_rows": len(rows_of_interest),
                    "logits_file": fname, "vocab": VOCAB}
            if native is not None:
                nat = reference_logits(native, full_ids, full_positions)[rows_of_interest]
                write_logits(os.path.join(out_dir, f"{case_name}.native.f32"), nat)
                case["native_logits_file"] = f"{case_name}.native.f32"
                case["native_max_abs_diff"] = float(np.abs(nat - expected).max())
            cases.append(case)

        # 1. Plain prefill: every row's logits.
        ids = rng.integers(0, VOCAB, 12).tolist()
        pos = list(range(12))
        add_case("prefill", [{"ids": ids, "positions": pos, "cache_start": 0, "logit_rows": list(range(12))}],
                 ids, pos, list(range(12)))

        # 2. A WeDLM window: committed prefix, then filled slots first and masks after, with their
        #    logical positions (window index + len(C)).
        prefix = rng.integers(0, VOCAB, 8).tolist()
        window = [int(rng.integers(0, VOCAB)), MASK_ID, int(rng.integers(0, VOCAB)), int(rng.integers(0, VOCAB)),
                  MASK_ID, MASK_ID]
        filled = [i for i, t in enumerate(window) if t != MASK_ID]
        masks = [i for i, t in enumerate(window) if t == MASK_ID]
        order = filled + masks
        w_ids = [window[i] for i in order]
        w_pos = [8 + i for i in order]
        add_case("permuted_window",
                 [{"ids": prefix, "positions": list(range(8)), "cache_start": 0, "logit_rows": []},
                  {"ids": w_ids, "positions": w_pos, "cache_start": 8, "logit_rows": list(range(len(w_ids)))}],
                 prefix + w_ids, list(range(8)) + w_pos, list(range(8, 8 + len(w_ids))))

        # 3. Incremental decode through the cache equals full recomputation.
        seq = rng.integers(0, VOCAB, 15).tolist()
        steps = [{"ids": seq[:8], "positions": list(range(8)), "cache_start": 0, "logit_rows": [7]}]
        for t in range(8, 12):
            steps.append({"ids": [seq[t]], "positions": [t], "cache_start": t, "logit_rows": [0]})
        steps.append({"ids": seq[12:15], "positions": [12, 13, 14], "cache_start": 12, "logit_rows": [0, 1, 2]})
        add_case("incremental", steps, seq, list(range(15)), [7, 8, 9, 10, 11, 12, 13, 14])

        # 4. A window that overwrites cache slots after the committed length: step 1 writes 6 rows
        #    at slots 8..13; two are committed; step 2 writes 3 rows at slots 10..12 (permuted
        #    positions). Slot 13 still holds step 1's row and must not be attended.
        prefix = rng.integers(0, VOCAB, 8).tolist()
        step1 = rng.integers(0, VOCAB, 6).tolist()
        step1_pos = [8, 9, 10, 11, 12, 13]
        step2 = [int(rng.integers(0, VOCAB)), MASK_ID, MASK_ID]
        step2_pos = [10, 12, 11]
        add_case("overwrite",
                 [{"ids": prefix, "positions": list(range(8)), "cache_start": 0, "logit_rows": []},
                  {"ids": step1, "positions": step1_pos, "cache_start": 8, "logit_rows": [0]},
                  {"ids": step2, "positions": step2_pos, "cache_start": 10, "logit_rows": [0, 1, 2]}],
                 prefix + step1[:2] + step2, list(range(8)) + [8, 9] + step2_pos, [10, 11, 12])
        # (step 1's logit row 0 is checked too: it is row 8 of prefix + step1.)
        full1 = reference_logits(ref, prefix + step1, list(range(8)) + step1_pos)
        write_logits(os.path.join(out_dir, "overwrite_step1.f32"), full1[[8]])
        cases[-1]["step1_logits_file"] = "overwrite_step1.f32"

        with open(os.path.join(out_dir, "cases.json"), "w") as f:
            json.dump({"model": name, "reference": f"transformers {transformers.__version__} "
                       f"{cls.__name__}, float64 compute on the checkpoint's weights, torch {torch.__version__}",
                       "mask_token_id": MASK_ID, "cases": cases}, f, indent=1)
        print(name, "ok", [(c["name"], c.get("native_max_abs_diff")) for c in cases], flush=True)


if __name__ == "__main__":
    sys.exit(main())
