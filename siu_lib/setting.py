"""What a notebook or a run works on, for either kind of profile: the MMUBench instance, the
fake-name pool SIU's target (a) draws from, and the models.

An embedded profile (:mod:`siu_lib.profiles`) builds its synthetic world's instance and
pre-trains (or loads the cached) checkpoints of its model sizes; a paper-scale profile
(:class:`siu_lib.scale.ModelProfile`) reads the committed ``paper`` instance, whose images the
user supplies, and loads its LLaVA checkpoint. :func:`open_setting` gives either as one
:class:`Setting`, so the same code runs under both; what only a synthetic world has
(pre-training, the never-seen reference, group photos) is behind :attr:`Setting.synthetic`.
The notebooks and the ``siu`` command line both load through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BenchmarkError, UnknownNameError


def load_instance(profile: Any, bench_dir: str | None = None) -> Any:
    """The MMUBench instance a run uses: ``bench_dir`` when given, else the profile's (the
    synthetic world's, generated if needed; a paper-scale profile's ``bench_dir`` field, or
    else the committed ``paper`` manifest)."""
    from .bench import ensure_synthetic, load_benchmark
    from .bench.paper import load_paper
    from .scale import is_synthetic

    bench_dir = bench_dir or getattr(profile, "bench_dir", "")
    if bench_dir:
        if not Path(bench_dir).is_dir():
            raise BenchmarkError(f"bench folder {bench_dir!r} is not an MMUBench instance folder")
        return load_benchmark(bench_dir, check_images=False)
    if is_synthetic(profile):
        return load_benchmark(ensure_synthetic(profile.world, progress=False))
    return load_paper(check_images=False)


def check_concept_images(bench: Any, concept_id: str) -> None:
    """:class:`~siu_lib.errors.BenchmarkError` when the concept has no forget image on disk,
    naming where to put it (the ``paper`` instance ships without images);
    :class:`~siu_lib.errors.UnknownNameError` for a concept the instance does not have."""
    concept = bench.concept(concept_id)
    try:
        path = bench.root / bench.forget_image_path(concept)
    except BenchmarkError as err:
        raise BenchmarkError(f"concept {concept.concept_id!r} ({concept.name}) has no forget image in "
                             f"{bench.root}: put exactly one at images/{concept.concept_id}/forget.png "
                             f"(or .jpg) ({err})") from None
    if not path.is_file():
        raise BenchmarkError(f"concept {concept.concept_id!r} ({concept.name}) has no forget image: "
                             f"{path} does not exist")


def fake_name_pool(profile: Any) -> list[str]:
    """The fake names SIU's target (a) draws from: the synthetic world's, or the ``paper``
    instance's pool of plausible invented names."""
    from .bench.paper import PAPER_FAKE_NAMES
    from .scale import is_synthetic
    from .world import World

    return list(World(profile.world).fake_names) if is_synthetic(profile) else list(PAPER_FAKE_NAMES)


def load_profile_model(profile: Any, model: str | None = None, size: str | None = None) -> tuple[Any, Any]:
    """The model and processor of a run: ``model`` (a folder, or a hub id) when given, else the
    profile's (the embedded checkpoint of ``size``, default ``tiny``, pre-trained if not cached,
    or the LLaVA checkpoint of :meth:`~siu_lib.scale.ModelProfile.model_source`), in the
    profile's dtype. :class:`~siu_lib.errors.UnknownNameError` for a size the embedded profile
    does not have."""
    from .models import load_model
    from .scale import is_synthetic

    dtype = None if is_synthetic(profile) else profile.dtype
    if model:
        source: Any = Path(model) if ("/" not in model or Path(model).exists() or model.startswith((".", "/"))) \
            else model
        return load_model(source, dtype=dtype)
    if is_synthetic(profile):
        from .embedded import ensure_pretrained

        size = size or "tiny"
        if size not in profile.models:
            raise UnknownNameError(f"profile {profile.name!r} has no model size {size!r}; known: {list(profile.models)}")
        return load_model(ensure_pretrained(profile.world, profile.models[size], profile.pretrain[size]))
    return load_model(profile.model_source(), dtype=dtype)


@dataclass
class Setting:
    """The instance, fake-name pool and models of a profile (:func:`open_setting`).

    Attributes:
        profile: the profile (embedded or paper-scale).
        bench: its MMUBench instance.
        fake_names: the names SIU's target (a) draws from.
        model_source: a model folder or hub id that replaces the profile's main model
            (:attr:`main_model`; "" keeps it).
    """

    profile: Any
    bench: Any
    fake_names: tuple[str, ...]
    model_source: str = ""
    _loaded: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def synthetic(self) -> bool:
        """Whether a synthetic world stands behind it (pre-training, the never-seen reference
        and group photos exist only there)."""
        from .scale import is_synthetic

        return is_synthetic(self.profile)

    @property
    def model_names(self) -> list[str]:
        """The models the profile runs: an embedded profile's sizes (``tiny``, ``small``), or
        the paper-scale profile's own name without its overrides (``llava-7b``)."""
        return list(self.profile.models) if self.synthetic else [self.profile.name.split("+", 1)[0]]

    def model(self, name: str | None = None) -> tuple[Any, Any]:
        """``(model, processor)`` of ``name`` (default: the first of :attr:`model_names`),
        loaded once: an embedded checkpoint (pre-trained first if not cached) or the LLaVA
        checkpoint in the profile's dtype. :class:`~siu_lib.errors.UnknownNameError` for a
        name the profile does not run."""
        name = name or self.model_names[0]
        if name not in self.model_names:
            raise UnknownNameError(f"profile {self.profile.name!r} runs no model {name!r}; "
                                   f"it runs {self.model_names}")
        if name not in self._loaded:
            source = self.model_source if name == self.main_model else ""
            self._loaded[name] = load_profile_model(self.profile, model=source or None,
                                                    size=name if self.synthetic else None)
        return self._loaded[name]

    @property
    def main_model(self) -> str:
        """The model of the protocols that run on one model only (SIU's targets, the step
        curves, Tables 2 and 3, Fig 4): ``tiny``, or the paper-scale profile's own."""
        return self.model_names[0]

    @property
    def run_options(self) -> dict[str, Any]:
        """What :func:`~siu_lib.runs.run_one` and :func:`~siu_lib.runs.attack_one` need to
        know of the machine: with a real model, ``share_base`` (no second copy of the weights
        under LoRA) and the profile's ``training_args`` (gradient checkpointing); with an
        embedded one, neither (each run trains a deep copy)."""
        if self.synthetic:
            return {"share_base": False, "training_args": None}
        return {"share_base": True, "training_args": self.profile.training_args() or None}

    def eval_config(self, images: int = 20) -> Any:
        """The :class:`~siu_lib.evaluate.EvalConfig` of an evaluation on at most ``images``
        generality images per concept (fewer where the profile's ``eval_images`` says so; a
        paper-scale profile's 0 puts no further limit)."""
        from .evaluate import EvalConfig

        limit = self.profile.eval_images
        return EvalConfig(n_generality_images=min(images, limit) if limit else images)

    def nonmembers(self, n: int, n_images: int) -> list[Any]:
        """The standard membership inference's non-members
        (:func:`siu_lib.attacks.held_out_identities`): ``n`` identities the synthetic world draws
        but never shows, ``n_images`` pictures each. A real model has no identities known to be
        unseen, so a paper-scale profile gets none (its attacks leave the AUC form out)."""
        if not self.synthetic:
            return []
        from .attacks import held_out_identities
        from .world import World

        return held_out_identities(World(self.profile.world), n, n_images)

    def models(self) -> dict[str, tuple[Any, Any]]:
        """Every model of :attr:`model_names`, by name (:meth:`model`)."""
        return {name: self.model(name) for name in self.model_names}

    def concept_ids(self, count: int, start: int = 0) -> list[str]:
        """The ids of ``count`` concepts of the instance from position ``start`` (a protocol's
        concepts: Table 1's first ones, Fig 4's further ones)."""
        return [c.concept_id for c in self.bench.concepts[start:start + count]]

    def check_images(self, concept_ids: list[str]) -> None:
        """:class:`~siu_lib.errors.BenchmarkError` naming every concept of ``concept_ids`` whose
        images are not all in place, and what is missing (the ``paper`` instance ships without
        them)."""
        missing = {cid: paths for cid, paths in self.bench.missing_images().items() if cid in concept_ids}
        if missing:
            shown = "; ".join(f"{cid}: {', '.join(paths[:3])}{' ...' if len(paths) > 3 else ''}"
                              for cid, paths in sorted(missing.items()))
            raise BenchmarkError(f"{len(missing)} concept(s) of {self.bench.root} miss images ({shown}); "
                                 f"put them in place first (README: Run at paper scale)")


def open_setting(profile: Any, bench_dir: str | None = None, model: str | None = None) -> Setting:
    """The :class:`Setting` of ``profile``: its instance (``bench_dir`` instead when given,
    :func:`load_instance`) and fake-name pool (:func:`fake_name_pool`); models load on first
    use, the main one from ``model`` (a folder or hub id) when given."""
    return Setting(profile, load_instance(profile, bench_dir), tuple(fake_name_pool(profile)), model or "")


__all__ = ["Setting", "check_concept_images", "fake_name_pool", "load_instance", "load_profile_model",
           "open_setting"]
