"""What SIU costs at paper scale: the LLaVA-1.5-7B/13B architectures with random weights (no
download), one measured training step per method, and an analytic memory estimate beside it.

:func:`llava_config` builds the real checkpoints' configuration (CLIP ViT-L/14 at 336 pixels,
576 image tokens, a two-layer GELU projector, the Vicuna/Llama language model of 4096 x 32
layers for 7B and 5120 x 40 for 13B, a vocabulary of 32064) from their published dimensions,
optionally at reduced depth. :func:`measure_step` times one optimiser step (forward, backward,
AdamW) of ``ce`` (LoRA with the plain answer cross-entropy), ``siu_copy`` (SIU's loss with a
frozen full copy of the model as the KL reference, as the paper's scripts hold it) and
``siu_adapters`` (SIU with the reference given by the same model with its adapters disabled)
and reads the peak memory: ``torch.cuda.max_memory_allocated`` on a GPU, the process's peak
resident memory on a CPU (run each in a fresh process: :func:`measure_in_child`).
:func:`memory_estimate` adds up weights, trainable states and activations with activation
checkpointing, so a user can size 13B (or 7B at full depth) before renting GPUs.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from .errors import ConfigError

#: the language models of LLaVA-1.5 (Vicuna v1.5, Llama-2 architecture): hidden size,
#: MLP size, layers, attention heads
TEXT_DIMS = {"7b": (4096, 11008, 32, 32), "13b": (5120, 13824, 40, 40)}
#: the vocabulary of the llava-hf checkpoints (32000 + <image> + <pad> + alignment to 64)
VOCAB = 32064
#: CLIP ViT-L/14 at 336 pixels: hidden, MLP, layers, heads, image size, patch size
VISION_DIMS = (1024, 4096, 24, 16, 336, 14)
#: image tokens per picture ((336 / 14)^2)
IMAGE_TOKENS = 576
#: the step kinds :func:`measure_step` times
STEP_KINDS = ("ce", "siu_copy", "siu_adapters")


def llava_config(size: str = "7b", text_layers: int | None = None, vision_layers: int | None = None) -> Any:
    """The ``LlavaConfig`` of ``llava-hf/llava-1.5-<size>-hf``, at ``text_layers`` /
    ``vision_layers`` depth when given (default: full depth). :class:`ConfigError` for an
    unknown size or a depth outside 1 .. full."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    if size not in TEXT_DIMS:
        raise ConfigError(f"unknown LLaVA-1.5 size {size!r}; known: {sorted(TEXT_DIMS)}")
    hidden, mlp, layers, heads = TEXT_DIMS[size]
    v_hidden, v_mlp, v_layers, v_heads, image, patch = VISION_DIMS
    text_layers = layers if text_layers is None else text_layers
    vision_layers = v_layers if vision_layers is None else vision_layers
    if not (1 <= text_layers <= layers and 1 <= vision_layers <= v_layers):
        raise ConfigError(f"depth must be 1..{layers} text and 1..{v_layers} vision layers, "
                          f"got {text_layers}, {vision_layers}")
    text = LlamaConfig(hidden_size=hidden, intermediate_size=mlp, num_hidden_layers=text_layers,
                       num_attention_heads=heads, num_key_value_heads=heads, vocab_size=VOCAB,
                       max_position_embeddings=4096, rms_norm_eps=1e-5, pad_token_id=32001)
    # vision_feature_layer -2 reads the penultimate layer: keep one more than used
    vision = CLIPVisionConfig(hidden_size=v_hidden, intermediate_size=v_mlp, num_hidden_layers=vision_layers,
                              num_attention_heads=v_heads, image_size=image, patch_size=patch, projection_dim=768,
                              hidden_act="quick_gelu")
    return LlavaConfig(vision_config=vision, text_config=text, image_token_index=32000,
                       projector_hidden_act="gelu", vision_feature_layer=-2,
                       vision_feature_select_strategy="default", image_seq_length=IMAGE_TOKENS)


def parameter_counts(config: Any, lora_r: int = 128) -> dict[str, int]:
    """Parameters of each part of a LLaVA config, counted from its dimensions: ``vision``,
    ``projector``, ``language`` (embeddings, layers, norm, output layer) and ``lora`` (rank
    ``lora_r`` on the seven linear layers of every language-model layer)."""
    t, v = config.text_config, config.vision_config
    h, m, n = t.hidden_size, t.intermediate_size, t.num_hidden_layers
    layer = 4 * h * h + 3 * h * m + 2 * h
    language = 2 * t.vocab_size * h + n * layer + h
    vh, vm = v.hidden_size, v.intermediate_size
    v_layer = 4 * (vh * vh + vh) + 2 * vh * vm + vm + vh + 4 * vh
    patches = (v.image_size // v.patch_size) ** 2
    vision = 3 * v.patch_size ** 2 * vh + (patches + 1) * vh + vh + v.num_hidden_layers * v_layer + 4 * vh
    projector = vh * h + h + h * h + h
    lora = n * lora_r * (4 * (h + h) + 2 * (h + m) + (m + h))
    return {"vision": vision, "projector": projector, "language": language, "lora": lora}


def memory_estimate(config: Any, kind: str = "siu_adapters", batch: int = 4, text_tokens: int = 64,
                    lora_r: int = 128, checkpointing: bool = True, weight_bytes: int = 2) -> dict[str, float]:
    """An analytic peak-memory estimate (GiB) of one training step of ``kind``
    (:data:`STEP_KINDS`) on ``config``: the weights (``weight_bytes`` each, bf16), a frozen
    copy for ``siu_copy``, the trainable states (LoRA in float32 and the projector's trained
    copy, each with its gradient and AdamW's two moments), the activations (with
    ``checkpointing``: each layer's input kept, one layer's working set recomputed in the
    backward pass; without it every layer's working set) and the logits (float32, the
    reference's too for SIU, and the log-softmax of each)."""
    if kind not in STEP_KINDS:
        raise ConfigError(f"unknown step kind {kind!r}; known: {STEP_KINDS}")
    gib = 1024 ** 3
    counts = parameter_counts(config, lora_r)
    base = counts["vision"] + counts["projector"] + counts["language"]
    weights = base * weight_bytes
    copy_ = weights if kind == "siu_copy" else 0
    lora_states = counts["lora"] * 4 * 4  # float32 value, gradient, two AdamW moments
    projector_states = counts["projector"] * weight_bytes * 4
    t = config.text_config
    seq = IMAGE_TOKENS + text_tokens
    tokens = batch * seq
    h, m, heads = t.hidden_size, t.intermediate_size, t.num_attention_heads
    layer_work = tokens * (10 * h + 3 * m) * weight_bytes + batch * heads * seq * seq * weight_bytes * 2
    kept = tokens * h * weight_bytes * t.num_hidden_layers
    activations = kept + layer_work if checkpointing else layer_work * t.num_hidden_layers
    logits = tokens * t.vocab_size * 4 * (2 if kind == "ce" else 4)
    parts = {"weights": weights, "frozen_copy": copy_, "trainable_states": lora_states + projector_states,
             "activations": activations, "logits": logits}
    out = {k: v / gib for k, v in parts.items()}
    out["total"] = sum(out.values())
    return out


@dataclass(frozen=True)
class StepSetup:
    """One measured step: the model ``size`` at ``text_layers`` / ``vision_layers`` depth, the
    step ``kind``, ``batch`` records of ``text_tokens`` text tokens each (plus the 576 image
    tokens), LoRA rank ``lora_r``, ``dtype`` of the weights, activation checkpointing, and
    ``steps`` timed after one warm-up step."""

    size: str = "7b"
    kind: str = "siu_adapters"
    text_layers: int | None = None
    vision_layers: int | None = None
    batch: int = 4
    text_tokens: int = 64
    lora_r: int = 128
    dtype: str = "bfloat16"
    checkpointing: bool = True
    steps: int = 2


def _batch(config: Any, setup: StepSetup, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    b, n = setup.batch, setup.text_tokens
    text = torch.randint(3, 32000, (b, n), generator=g)
    image = torch.full((b, IMAGE_TOKENS), config.image_token_index)
    ids = torch.cat([text[:, :2], image, text[:, 2:]], dim=1)
    labels = torch.full_like(ids, -100)
    labels[:, -n // 2:] = ids[:, -n // 2:]
    token_mask = torch.ones_like(ids)
    token_mask[:, -4:] = 0
    side = config.vision_config.image_size
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device),
            "pixel_values": torch.randn(b, 3, side, side, generator=g).to(device, dtype),
            "labels": labels.to(device), "token_mask": token_mask.to(device),
            "is_forget": torch.zeros(b, dtype=torch.bool).to(device)}


def _reset_peak_rss() -> None:
    """Start the process's peak resident set anew from what is resident now (Linux: writing 5
    to ``/proc/self/clear_refs``), so the peak read after the steps is theirs, not the model
    construction's; elsewhere nothing is reset."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_rss_gib() -> float:
    """The process's peak resident set in GiB since :func:`_reset_peak_rss` (``VmHWM``), or
    since it started where ``/proc`` is missing (``ru_maxrss``)."""
    try:
        with open("/proc/self/status") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib / 1024 ** 2


def measure_step(setup: StepSetup) -> dict[str, Any]:
    """Build the architecture with random weights, wrap it for ``setup.kind`` and time
    ``setup.steps`` optimiser steps after a warm-up step. Returns the setup, the device, the
    median seconds per step, the peak memory in GiB over the steps (GPU: allocated by torch; CPU:
    the process's peak resident set, weights and the Python runtime included) and
    :func:`memory_estimate` for the same setup."""
    from transformers import LlavaForConditionalGeneration

    from .methods import get_method
    from .train import TrainConfig, method_step_loss, prepare_model

    if setup.kind not in STEP_KINDS:
        raise ConfigError(f"unknown step kind {setup.kind!r}; known: {STEP_KINDS}")
    if setup.steps < 1 or setup.batch < 1:
        raise ConfigError(f"steps and batch must be >= 1, got steps={setup.steps}, batch={setup.batch}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, setup.dtype)
    config = llava_config(setup.size, setup.text_layers, setup.vision_layers)
    torch.manual_seed(0)
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built in its dtype: never a float32 copy of the weights
    try:
        with torch.device(device):
            model = LlavaForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(default_dtype)
    reference = None
    if setup.kind == "siu_copy":
        reference = copy.deepcopy(model).eval()
        reference.requires_grad_(False)
    if setup.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    # wrapped as an unlearning run wraps it: LoRA on the language model, the projector trained
    model, _ = prepare_model(model, TrainConfig(lora_r=setup.lora_r, lora_alpha=2 * setup.lora_r, lora_dropout=0.05))
    method = get_method("po" if setup.kind == "ce" else "siu")  # PO's loss is the plain answer CE
    vocab_mask = torch.ones(VOCAB, dtype=torch.bool, device=device)
    vocab_mask[[100, 200]] = False
    batch = _batch(config, setup, device, dtype)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=3e-4)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        _reset_peak_rss()
    model.train()
    times = []
    for step in range(setup.steps + 1):
        t0 = time.perf_counter()
        loss, _, _ = method_step_loss(model, batch, method, method.config, vocab_mask, reference)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step:
            times.append(time.perf_counter() - t0)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 1024 ** 3
        name = torch.cuda.get_device_name()
    else:
        peak = _peak_rss_gib()
        name = "cpu"
    estimate = memory_estimate(config, setup.kind, setup.batch, setup.text_tokens, setup.lora_r, setup.checkpointing,
                               torch.finfo(dtype).bits // 8)
    from .cpu import current_path

    return {**asdict(setup), "text_layers": config.text_config.num_hidden_layers,
            "vision_layers": config.vision_config.num_hidden_layers, "device": name,
            "cpu_path": current_path() if device.type == "cpu" else "gpu",
            "seconds_per_step": sorted(times)[len(times) // 2], "peak_gib": peak,
            "estimate_gib": estimate["total"], **{f"estimate_{k}_gib": v for k, v in estimate.items() if k != "total"}}


def measure_in_child(setup: StepSetup, timeout: float = 3600, native: bool = True) -> dict[str, Any]:
    """:func:`measure_step` in a fresh Python process (so each step's peak memory is its own).

    ``native``: on a CPU, the child runs the CPU's own kernels (``SIU_CPU_PATH=native``, the
    AVX2 pin of :mod:`siu_lib.cpu` off): a cost is a property of the machine, and bfloat16
    matrix products on the pinned AVX2 path are emulated, many times slower than on a CPU with
    AVX-512 BF16. The row's ``cpu_path`` says which path ran."""
    from .cpu import PINNED_ENV, SWITCH

    env = {**os.environ, "SIU_PROGRESS": "off"}
    if native:
        env = {k: v for k, v in env.items() if k not in PINNED_ENV}
        env[SWITCH] = "native"
    code = ("import json, sys; from siu_lib.paper_scale import StepSetup, measure_step; "
            "print(json.dumps(measure_step(StepSetup(**json.loads(sys.argv[1])))))")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(asdict(setup))], capture_output=True, text=True,
                          timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"measuring {setup} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


__all__ = ["IMAGE_TOKENS", "STEP_KINDS", "StepSetup", "llava_config", "measure_in_child", "measure_step",
           "memory_estimate", "parameter_counts"]
