"""The cached, pre-trained embedded checkpoints.

:func:`ensure_pretrained` returns the checkpoint folder of (world config, model config,
pre-training config), building it when missing: a BPE tokenizer trained on the world's text,
a freshly initialised ``LlavaForConditionalGeneration`` of the requested size, and supervised
pre-training on the world's stream (recognition in two languages, yes/no, text facts,
image-to-fact, general visual QA and group photos; generality images never). The folder
loads like any HF LLaVA checkpoint (:func:`siu_lib.models.load_model`) and holds
``pretrain.json`` with the configs, the loss curve, the wall time, versions and commit.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..cpu import SWITCH, cpu_path_info, current_path
from ..errors import ConfigError
from ..models import Example, count_parameters
from ..paths import checkpoint_dir
from ..results import atomic_write_json, config_digest, run_metadata
from ..world import WORLD_REVISION, World, WorldConfig
from .model import EmbeddedConfig, build_embedded_model
from .pretrain import PretrainConfig, pretrain
from .tokenizer import train_tokenizer


def checkpoint_key(world: WorldConfig, model: EmbeddedConfig, train: PretrainConfig) -> str:
    """A stable key naming a checkpoint: model name + a hash of every config that shapes it.

    ``train.withheld`` enters the hash only when it is not empty (sorted: the order does not
    change what pre-training shows), so that the ordinary checkpoints keep the keys they had
    before the field existed; a checkpoint with withheld concepts is named
    ``<model>-never-seen-<hash>``. ``train.cpu_path`` enters it likewise only when it is not
    the pinned ``avx2``, so a checkpoint made on the CPU's native kernels never takes the
    place of a pinned one."""
    pretrain = asdict(train)
    if pretrain["withheld"]:
        pretrain["withheld"] = sorted(pretrain["withheld"])
    else:
        del pretrain["withheld"]
    if pretrain["cpu_path"] == "avx2":
        del pretrain["cpu_path"]
    digest = config_digest({"world": asdict(world), "world_revision": WORLD_REVISION,
                            "model": asdict(model), "pretrain": pretrain})
    return f"{model.name}-never-seen-{digest}" if train.withheld else f"{model.name}-{digest}"


def build_and_pretrain(world: World, model_cfg: EmbeddedConfig, train_cfg: PretrainConfig,
                       progress: bool = True) -> tuple[Any, Any, dict[str, Any]]:
    """Build the embedded model for a world and pre-train it; returns (model, processor, info)."""
    tokenizer = train_tokenizer(world.texts(), model_cfg.vocab_size)
    model, processor = build_embedded_model(model_cfg, tokenizer, seed=train_cfg.seed)
    align = int(round(train_cfg.align_fraction * train_cfg.steps)) * train_cfg.batch_size
    grounding_from = train_cfg.steps * train_cfg.batch_size if train_cfg.grounding_steps else None
    stream = world.pretraining_stream(train_cfg.seed, align_examples=align, withheld=train_cfg.withheld,
                                      grounding_from=grounding_from)

    def next_example(_rng: Any) -> Example:
        e = next(stream)
        return Example(e.image, e.question, e.answer)

    t0 = time.perf_counter()
    losses = pretrain(model, processor, next_example, train_cfg, progress=progress)
    if train_cfg.grounding_steps:  # the grounding stage: the same stream, a schedule of its own
        stage = replace(train_cfg, steps=train_cfg.grounding_steps, lr=train_cfg.grounding_lr,
                        align_fraction=0.0, grounding_steps=0)
        model.train()
        losses += pretrain(model, processor, next_example, stage, progress=progress)
    seconds = time.perf_counter() - t0
    info = {"params": count_parameters(model), "pretrain_seconds": seconds, "losses": losses}
    return model, processor, info


#: the pre-training time budget of each embedded model size on 2 CPU cores (seconds)
PRETRAIN_BUDGET_SECONDS = 1800.0


def pretrain_step_seconds(world: World, model_cfg: EmbeddedConfig, train_cfg: PretrainConfig,
                          n_steps: int = 24, warmup_steps: int = 3) -> dict[str, float]:
    """Seconds per pre-training step of a freshly built model, in each stage of the world's
    example stream: ``{"align": ..., "full": ...}``.

    Each stage runs :func:`~siu_lib.embedded.pretrain` for ``warmup_steps`` (not timed:
    allocation) and then ``n_steps`` timed steps, with ``train_cfg``'s batch size, precision and
    bucketing, so a step costs what it costs in :func:`build_and_pretrain`: drawing and
    rendering the examples, the processor, forward, backward and the optimiser. The model
    really trains (at ``train_cfg.lr`` from a fresh init). Keep ``n_steps`` a multiple of
    ``train_cfg.bucket_batches``: examples are drawn that many batches at a time, so other
    counts over- or under-charge the drawing. Use
    :func:`projected_pretrain_seconds` to turn the result into a wall-time estimate for the
    configured step count on this machine, in a minute instead of a full pre-training run.
    """
    if n_steps < 1 or warmup_steps < 0:
        raise ConfigError(f"n_steps must be >= 1 and warmup_steps >= 0, got {n_steps}, {warmup_steps}")
    tokenizer = train_tokenizer(world.texts(), model_cfg.vocab_size)
    model, processor = build_embedded_model(model_cfg, tokenizer, seed=train_cfg.seed)
    out = {}
    for stage, align in (("align", 10**9), ("full", 0)):
        stream = world.pretraining_stream(train_cfg.seed, align_examples=align)

        def next_example(_rng: Any, stream=stream) -> Example:
            e = next(stream)
            return Example(e.image, e.question, e.answer)

        if warmup_steps:
            pretrain(model, processor, next_example, replace(train_cfg, steps=warmup_steps, warmup=0),
                     progress=False)
        t0 = time.perf_counter()
        pretrain(model, processor, next_example, replace(train_cfg, steps=n_steps, warmup=0), progress=False)
        out[stage] = (time.perf_counter() - t0) / n_steps
    return out


def projected_pretrain_seconds(step_seconds: dict[str, float], train_cfg: PretrainConfig) -> float:
    """Wall time of ``train_cfg``'s pre-training at the measured seconds per step of each
    stage (:func:`pretrain_step_seconds`): ``align_fraction`` of the steps (rounded as
    :func:`build_and_pretrain` rounds them) at the alignment stage's cost, the rest and the
    grounding stage's ``grounding_steps`` at the full mixture's."""
    align = int(round(train_cfg.align_fraction * train_cfg.steps))
    return (align * step_seconds["align"]
            + (train_cfg.steps - align + train_cfg.grounding_steps) * step_seconds["full"])


def ensure_pretrained(world_cfg: WorldConfig, model_cfg: EmbeddedConfig, train_cfg: PretrainConfig,
                      progress: bool = True, rebuild: bool = False) -> Path:
    """The cached checkpoint folder for these configs, pre-training it when missing.

    The folder is written next to its final place and renamed when complete, so an
    interrupted run leaves no half-written checkpoint behind. A checkpoint is only built on
    the CPU code path its config names (``train_cfg.cpu_path``; :func:`siu_lib.cpu.current_path`),
    else :class:`ConfigError`: a cache key must not hold weights another path made.
    """
    folder = checkpoint_dir(checkpoint_key(world_cfg, model_cfg, train_cfg))
    if (folder / "pretrain.json").exists() and not rebuild:
        return folder
    if train_cfg.cpu_path != current_path():
        raise ConfigError(f"{folder.name} is pre-trained on the {train_cfg.cpu_path!r} CPU path, but this "
                          f"process runs {current_path()!r} ({cpu_path_info()}); use the profile "
                          f"get_profile() gives, or set {SWITCH} accordingly")
    model, processor, info = build_and_pretrain(World(world_cfg), model_cfg, train_cfg, progress)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    atomic_write_json(tmp / "pretrain.json", {
        **run_metadata(None, train_cfg.seed), "world_config": asdict(world_cfg),
        "model_config": asdict(model_cfg), "pretrain_config": asdict(train_cfg), **info})
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    return folder


def pretrain_info(folder: str | Path) -> dict[str, Any]:
    """The ``pretrain.json`` record of a checkpoint built by :func:`ensure_pretrained`."""
    return json.loads((Path(folder) / "pretrain.json").read_text())
