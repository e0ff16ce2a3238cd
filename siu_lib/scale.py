"""Paper scale: the ``llava-7b`` and ``llava-13b`` profiles, and what runs them on GPUs.

A :class:`ModelProfile` names a real LLaVA-1.5 checkpoint (a hub id, or a local folder the user
downloaded it to), the ``paper`` MMUBench instance (the user supplies its images) and the
paper's training defaults (spec 01 section 4: LoRA r 128 / alpha 256 / dropout 0.05, lr 3e-4,
projector lr 2e-5, batch 4, 6 steps, 3 seeds), in bfloat16 with gradient checkpointing. It has
no synthetic world: what needs one (pre-training, the never-seen reference, group photos)
skips under it. :func:`resolve_profile` gives either kind by name, with the same ``--set``
overrides as :func:`siu_lib.profiles.get_profile`.

Where the checkpoint is: ``model_path`` if set (``--set model_path=/data/llava``), else the
folder ``data/models/<name of the hub id>`` if it exists (``huggingface-cli download
llava-hf/llava-1.5-7b-hf --local-dir data/models/llava-1.5-7b-hf``), else the hub id itself
(downloaded to the Hugging Face cache on first use).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError, ModelLoadError, UnknownNameError
from .paths import DATA_DIR
from .train import TrainConfig

#: the paper's training defaults at scale (spec 01 section 4); bf16 on the GPU
PAPER_TRAIN = TrainConfig(steps=6, batch_size=4, lr=3e-4, projector_lr=2e-5, lora_r=128, lora_alpha=256,
                          lora_dropout=0.05, warmup_ratio=0.03, scheduler="cosine", seed=0, bf16=True)


@dataclass(frozen=True)
class ModelProfile:
    """A profile that runs a real LLaVA-family checkpoint on the ``paper`` instance.

    Attributes:
        name: ``llava-7b`` or ``llava-13b`` (then ``+path=value`` per override).
        hub_id: the checkpoint on the Hugging Face hub.
        model_path: a local folder to load instead ("" = look for ``data/models/<hub name>``,
            then use the hub id).
        instance: the MMUBench instance (``paper``: images supplied by the user).
        bench_dir: an MMUBench instance folder to use instead of the committed ``paper`` one
            ("" = ``data/paper``, where the user puts the images).
        unlearn: the training defaults (:data:`PAPER_TRAIN`).
        seeds: unlearning seeds per result (paper: 3).
        dtype: the weights' dtype when loaded (``bfloat16``).
        gradient_checkpointing: recompute activations in the backward pass (memory for time;
            the Trainer's ``activation_checkpointing``).
        eval_images: generality images per concept in an evaluation (0 = all the user gave).
        unlearn_concepts, table_concepts, further_concepts, step_concepts, step_grid,
            multi_counts: the notebooks' protocol, as the embedded default profile has it
            (:class:`siu_lib.profiles.Profile`): SIU's targets on the first 5 concepts, Table 1
            on the first 5, Fig 4 on the next 8, the step curves on 3 concepts over 6 ... 35
            steps, Table 3's curve over 1, 5, 10 and 20 concepts.
        overrides: the ``(dotted path, value)`` pairs it was made with.
    """

    name: str
    hub_id: str
    model_path: str = ""
    instance: str = "paper"
    bench_dir: str = ""
    unlearn: TrainConfig = field(default_factory=lambda: PAPER_TRAIN)
    seeds: tuple[int, ...] = (0, 1, 2)
    dtype: str = "bfloat16"
    gradient_checkpointing: bool = True
    eval_images: int = 0
    unlearn_concepts: int = 5
    table_concepts: int = 5
    further_concepts: int = 8
    step_concepts: int = 3
    step_grid: tuple[int, ...] = (6, 10, 15, 20, 25, 30, 35)
    multi_counts: tuple[int, ...] = (1, 5, 10, 20)
    overrides: tuple[tuple[str, str], ...] = field(default=())

    #: no synthetic world behind this profile
    synthetic = False

    def model_source(self) -> str:
        """Where the checkpoint is loaded from: ``model_path``, else ``data/models/<hub name>``
        when that folder exists, else the hub id. :class:`~siu_lib.errors.ModelLoadError` names
        a ``model_path`` that is not a folder."""
        if self.model_path:
            if not Path(self.model_path).is_dir():
                raise ModelLoadError(f"model_path {self.model_path!r} of profile {self.name!r} is not a folder; "
                                     f"download {self.hub_id} there first")
            return self.model_path
        local = DATA_DIR / "models" / self.hub_id.split("/")[-1]
        return str(local) if local.is_dir() else self.hub_id

    def training_args(self) -> dict[str, Any]:
        """The machine-side ``TrainingArguments`` of this profile (for
        :func:`siu_lib.train.unlearn`'s ``training_args``): gradient checkpointing without
        re-entrant autograd (so LoRA needs no gradient on the inputs)."""
        if not self.gradient_checkpointing:
            return {}
        return {"activation_checkpointing": True, "activation_checkpointing_kwargs": {"use_reentrant": False}}


MODEL_PROFILES: dict[str, ModelProfile] = {
    "llava-7b": ModelProfile(name="llava-7b", hub_id="llava-hf/llava-1.5-7b-hf"),
    "llava-13b": ModelProfile(name="llava-13b", hub_id="llava-hf/llava-1.5-13b-hf"),
}


def profile_names() -> list[str]:
    """Every profile name: the embedded ones (:data:`siu_lib.profiles.PROFILES`) and these."""
    from .profiles import PROFILES

    return sorted([*PROFILES, *MODEL_PROFILES])


def resolve_profile(name: str | None = None, overrides: str | None = None) -> Any:
    """The named profile with ``overrides`` applied: an embedded
    :class:`~siu_lib.profiles.Profile` (:func:`siu_lib.profiles.get_profile`) or a
    :class:`ModelProfile`. :class:`~siu_lib.errors.UnknownNameError` lists every known name."""
    from .overrides import apply_overrides, override_name
    from .profiles import PROFILES, get_profile
    from .results import set_profile_context

    name = name or os.environ.get("SIU_PROFILE", "default")
    if name in PROFILES:
        return get_profile(name, overrides)
    if name not in MODEL_PROFILES:
        raise UnknownNameError(f"unknown profile {name!r}; known: {profile_names()}")
    base = MODEL_PROFILES[name]
    text = os.environ.get("SIU_SET", "") if overrides is None else overrides
    profile, pairs = apply_overrides(base, text)
    if pairs:
        profile = replace(profile, name=override_name(base.name, pairs), overrides=pairs)
    if profile.eval_images < 0:
        raise ConfigError(f"eval_images must be >= 0, got {profile.eval_images}")
    set_profile_context(profile.name, pairs)
    return profile


def is_synthetic(profile: Any) -> bool:
    """Whether ``profile`` has a synthetic world (an embedded profile) or runs a real model."""
    return getattr(profile, "synthetic", True)


def require_synthetic(profile: Any, what: str) -> None:
    """:class:`~siu_lib.errors.ConfigError` naming ``what`` (a notebook, a step) when
    ``profile`` has no synthetic world: pre-training, the never-seen reference and group photos
    exist only there (the chain skips the notebooks that need one)."""
    if not is_synthetic(profile):
        raise ConfigError(f"{what} needs the synthetic world of an embedded profile; profile "
                          f"{profile.name!r} runs a real model (the chain skips it there)")


__all__ = ["MODEL_PROFILES", "PAPER_TRAIN", "ModelProfile", "is_synthetic", "profile_names", "require_synthetic",
           "resolve_profile"]
