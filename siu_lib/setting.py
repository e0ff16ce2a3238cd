"""What a notebook or a run works on, for either kind of profile: the MMUBench instance, the
fake-name pool SIU's target (a) draws from, and the models.

An embedded profile (:mod:`siu_lib.profiles`) builds its synthetic world's instance and
pre-trains (or loads the cached) checkpoints of its model sizes; a paper-scale profile
(:class:`siu_lib.scale.ModelProfile`) reads the committed ``paper`` instance, whose images the
user supplies, and loads its LLaVA checkpoint. :func:`open_setting` gives either as one
:class:`Setting`, so the same code runs under both; what only a synthetic world has
(pre-training, the never-seen reference, group photos) is behind :attr:`Setting.synthetic`.
The ``siu`` command line loads its runs through the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BenchmarkError, UnknownNameError


def load_instance(profile: Any, bench_dir: str | None = None) -> Any:
    """The MMUBench instance a run uses: ``bench_dir`` when given, else the profile's (the
    synthetic world's, generated if needed, or the committed ``paper`` manifest)."""
    from .bench import ensure_synthetic, load_benchmark
    from .bench.paper import load_paper
    from .scale import is_synthetic

    if bench_dir:
        if not Path(bench_dir).is_dir():
            raise BenchmarkError(f"--bench {bench_dir!r} is not an MMUBench instance folder")
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
    """

    profile: Any
    bench: Any
    fake_names: tuple[str, ...]
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
        the paper-scale profile's own name (``llava-7b``)."""
        return list(self.profile.models) if self.synthetic else [self.profile.name]

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
            self._loaded[name] = load_profile_model(self.profile, size=name if self.synthetic else None)
        return self._loaded[name]

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


def open_setting(profile: Any, bench_dir: str | None = None) -> Setting:
    """The :class:`Setting` of ``profile``: its instance (``bench_dir`` instead when given,
    :func:`load_instance`) and fake-name pool (:func:`fake_name_pool`); models load on first
    use."""
    return Setting(profile, load_instance(profile, bench_dir), tuple(fake_name_pool(profile)))


__all__ = ["Setting", "check_concept_images", "fake_name_pool", "load_instance", "load_profile_model",
           "open_setting"]
