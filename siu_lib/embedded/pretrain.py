"""Supervised pre-training of the embedded model on the world's example stream."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Union

import torch
from transformers import (ProcessorMixin, get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup,
                          get_linear_schedule_with_warmup)

from ..cpu import PATHS as CPU_PATHS
from ..errors import ConfigError, SIUError, UnknownNameError
from ..progress import progress_bar
from ..models import Example, ModelLike, batch_to_model, collate_examples, model_device_dtype

logger = logging.getLogger(__name__)


#: Most CPU threads torch may use while pre-training (the build machine has 2 cores).
MAX_TORCH_THREADS = 2


@dataclass
class PretrainConfig:
    """Settings of :func:`pretrain` (supervised training of the embedded model on the world).

    Fields:
        steps: optimiser steps.
        batch_size: examples per step (image and text-only examples may be mixed).
        lr: peak learning rate of AdamW.
        warmup: linear warm-up length: a fraction of ``steps`` if < 1, else a number of steps.
        weight_decay: AdamW weight decay, applied to matrices only (not biases or norms).
        seed: seeds torch and the example stream's ``random.Random``.
        log_every: log the mean loss of the last ``log_every`` steps (and refresh the bar).
        schedule: learning-rate schedule after warm-up: "cosine", "linear" or "constant".
        max_grad_norm: gradient-norm clipping threshold (``None`` or 0 disables clipping).
        max_length: optional cut of each row's tokens (see :func:`collate_examples`).
        align_fraction: fraction of the steps spent in stage 1, identity alignment (naming
            the people in single and group pictures), before the full mixture; used by
            :func:`siu_lib.embedded.build_and_pretrain` to shape the world's example stream,
            in the spirit of LLaVA's stage-1 feature alignment.
        grounding_steps: steps of the grounding stage, run after ``steps`` with a schedule of
            its own (warm-up then ``schedule`` again, from ``grounding_lr``): the full mixture
            with half of the records yes/no questions
            (:data:`siu_lib.world.text.GROUNDING_MIXTURE`), once the model names every identity,
            so that it learns to weigh the asked name against the face it sees (0: no stage).
            Like LLaVA's training stages, each stage has its own learning-rate schedule.
        grounding_lr: the grounding stage's peak learning rate.
        vision_lr_scale: the vision tower's and projector's learning rate is ``lr`` times this.
        bucket_batches: draw this many batches' worth of examples at a time, sort them by
            length and cut them into batches (in a shuffled order), so that rows of similar
            length share a batch and less compute goes to padding; 1 turns it off.
        bf16: run the forward pass under CPU/CUDA bfloat16 autocast (mixed precision; the
            weights and the optimiser stay float32).
        withheld: concept ids the world's example stream never shows in a picture (their
            text facts stay): the "never seen" reference model of
            :func:`siu_lib.analysis.never_seen_runs`; empty for every ordinary checkpoint.
        cpu_path: the CPU code path the checkpoint is pre-trained on (:mod:`siu_lib.cpu`):
            ``avx2``, the pinned path of every committed result, or ``native``, which gives the
            checkpoint its own cache key.
    """

    steps: int = 1000
    batch_size: int = 16
    lr: float = 2e-3
    warmup: float = 0.05
    weight_decay: float = 0.01
    seed: int = 0
    log_every: int = 50
    schedule: str = "cosine"
    max_grad_norm: float | None = 1.0
    max_length: int | None = None
    align_fraction: float = 0.0
    grounding_steps: int = 0
    grounding_lr: float = 5e-4
    vision_lr_scale: float = 1.0
    bucket_batches: int = 1
    bf16: bool = False
    withheld: tuple[str, ...] = ()
    cpu_path: str = "avx2"

    def warmup_steps(self) -> int:
        """Warm-up length in optimiser steps."""
        return int(round(self.warmup * self.steps)) if self.warmup < 1 else int(self.warmup)

    def validate(self) -> None:
        """Raise :class:`ConfigError` on an out-of-range value."""
        if self.steps < 1 or self.batch_size < 1 or self.log_every < 1 or self.bucket_batches < 1:
            raise ConfigError(
                f"steps, batch_size, log_every and bucket_batches must be >= 1, got "
                f"{self.steps}, {self.batch_size}, {self.log_every}, {self.bucket_batches}"
            )
        if self.lr <= 0 or self.warmup < 0 or self.weight_decay < 0:
            raise ConfigError(
                f"lr must be > 0 and warmup, weight_decay >= 0, got "
                f"{self.lr}, {self.warmup}, {self.weight_decay}"
            )
        if self.grounding_steps < 0 or self.grounding_lr <= 0:
            raise ConfigError(f"grounding_steps must be >= 0 and grounding_lr > 0, got "
                              f"{self.grounding_steps} and {self.grounding_lr}")
        if not 0.0 <= self.align_fraction < 1.0 or self.vision_lr_scale <= 0:
            raise ConfigError(
                f"align_fraction must be in [0, 1) and vision_lr_scale > 0, got "
                f"{self.align_fraction}, {self.vision_lr_scale}"
            )
        if self.schedule not in _SCHEDULES:
            raise UnknownNameError(
                f"unknown schedule {self.schedule!r}; known: {sorted(_SCHEDULES)}"
            )
        if isinstance(self.withheld, str) or len(set(self.withheld)) != len(self.withheld):
            raise ConfigError(f"withheld must be a tuple of distinct concept ids, got {self.withheld!r}")
        if self.cpu_path not in CPU_PATHS:
            raise ConfigError(f"cpu_path must be one of {CPU_PATHS}, got {self.cpu_path!r}")


_SCHEDULES: dict[str, Callable[..., Any]] = {
    "cosine": lambda opt, warm, total: get_cosine_schedule_with_warmup(opt, warm, total),
    "linear": lambda opt, warm, total: get_linear_schedule_with_warmup(opt, warm, total),
    "constant": lambda opt, warm, total: get_constant_schedule_with_warmup(opt, warm),
}


ExampleStream = Union[Callable[[random.Random], Example], Iterable[Example]]


def _example_length(ex: Example) -> tuple[bool, int]:
    """A sort key that orders examples by their (approximate) token length."""
    return (ex.image is not None, len(ex.question) + len(ex.answer))


def _example_batches(
    stream: ExampleStream, batch_size: int, seed: int, bucket: int = 1
) -> Iterator[list[Example]]:
    """Batches from a stream; with ``bucket > 1``, ``bucket`` batches' worth of examples are
    drawn at once, sorted by length, cut into batches and yielded in a seeded random order."""
    if callable(stream) and not isinstance(stream, Iterator):
        rng = random.Random(seed)
        fn = stream
        iterator: Iterator[Example] = iter(lambda: fn(rng), None)
    else:
        iterator = iter(stream)
    order_rng = random.Random(f"buckets-{seed}")
    while True:
        pool = []
        for _ in range(batch_size * bucket):
            try:
                pool.append(next(iterator))
            except StopIteration:
                break
        if not pool:
            return
        if bucket > 1:
            pool.sort(key=_example_length)
        batches = [pool[i:i + batch_size] for i in range(0, len(pool), batch_size)]
        if bucket > 1:  # sorted batches would run from short to long: shuffle their order
            order_rng.shuffle(batches)
        yield from batches
        if len(pool) < batch_size * bucket:
            return


def pretrain(
    model: ModelLike,
    processor: ProcessorMixin,
    example_stream: ExampleStream,
    cfg: PretrainConfig,
    progress: bool = True,
) -> list[float]:
    """Train ``model`` on examples drawn from ``example_stream``; return the loss of every step.

    ``example_stream`` is either a callable ``(rng) -> Example`` (called ``batch_size`` times per
    step with one ``random.Random(cfg.seed)``) or an iterable of examples (training stops early,
    with a warning, when it runs out). The loss is the cross-entropy on answer tokens only.
    AdamW with warm-up then ``cfg.schedule``; deterministic given ``cfg.seed``; torch uses at most
    two CPU threads. The model is left in eval mode.
    """
    cfg.validate()
    torch.set_num_threads(max(1, min(torch.get_num_threads(), MAX_TORCH_THREADS)))
    torch.manual_seed(cfg.seed)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    groups = []
    for is_vision in (False, True):  # the vision tower + projector may get their own lr
        part = [p for n, p in named if (("vision_tower" in n or "multi_modal_projector" in n) == is_vision)]
        lr = cfg.lr * (cfg.vision_lr_scale if is_vision else 1.0)
        groups += [{"params": [p for p in part if p.ndim >= 2], "weight_decay": cfg.weight_decay, "lr": lr},
                   {"params": [p for p in part if p.ndim < 2], "weight_decay": 0.0, "lr": lr}]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr)
    scheduler = _SCHEDULES[cfg.schedule](optimizer, cfg.warmup_steps(), cfg.steps)
    batches = _example_batches(example_stream, cfg.batch_size, cfg.seed, cfg.bucket_batches)
    device_type = model_device_dtype(model)[0].type

    losses: list[float] = []
    model.train()
    # refreshed at most every 2 s: a notebook without widgets prints every refresh as a line
    bar = progress_bar(total=cfg.steps, desc="pre-training", progress=progress, mininterval=2.0)
    try:
        for step in range(cfg.steps):
            examples = next(batches, None)
            if examples is None:
                logger.warning("example stream ran out after %d of %d steps", step, cfg.steps)
                break
            batch = batch_to_model(collate_examples(processor, examples, cfg.max_length), model)
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=cfg.bf16):
                loss = model(**batch).loss
            if not torch.isfinite(loss):
                raise SIUError(f"pre-training loss is {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            bar.update(1)
            if (step + 1) % cfg.log_every == 0 or step == 0:
                window = losses[-cfg.log_every:]
                mean = sum(window) / len(window)
                bar.set_postfix(loss=f"{mean:.3f}")
                logger.info("step %d/%d loss %.4f", step + 1, cfg.steps, mean)
    finally:
        bar.close()
        model.eval()
    return losses
