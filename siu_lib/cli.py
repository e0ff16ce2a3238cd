"""The command line (``siu``, or ``python -m siu_lib.cli``): unlearn one concept with one method,
on one process or several.

    siu profiles
    siu unlearn --profile llava-7b --concept facebook --out runs/facebook-siu
    accelerate launch --config_file configs/accelerate/zero3.yaml -m siu_lib.cli unlearn \\
        --profile llava-7b --concept facebook --out runs/facebook-siu
    torchrun --nproc_per_node 2 -m siu_lib.cli unlearn --profile smoke --concept c00 ...

``unlearn`` loads the profile's model (``--model`` replaces it: a folder or a hub id), its
MMUBench instance (``--bench`` replaces it: an instance folder), builds the method's
fine-tuning data from the concept's one forget image, trains, and on the main process writes
the adapter (or the full model) with ``unlearn.json`` (configs, loss history, versions,
commit, machine) to ``--out`` and the loss history to ``--history``. Launched on several
processes (``torchrun`` or ``accelerate launch``), every process trains on its share of each
step's records (``batch_size`` each, its loss a mean over its own records; ``--grad-accum``
micro-batches per step on one process give the same global batch and the same averaged
gradient) and the history is averaged over them. A notebook can call it as a subprocess the
same way. Every error a user can cause exits with status 1 and one line
naming the bad value.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import siu_lib  # noqa: F401  (first: pins the CPU code path before torch runs anything)

from .errors import BenchmarkError, SIUError


def _is_main_process() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


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


def load_profile_model(profile: Any, model: str | None = None) -> tuple[Any, Any]:
    """The model and processor of a run: ``model`` (a folder, or a hub id) when given, else the
    profile's (the embedded ``tiny`` checkpoint, pre-trained if not cached, or the LLaVA
    checkpoint of :meth:`~siu_lib.scale.ModelProfile.model_source`), in the profile's dtype."""
    from .models import load_model
    from .scale import is_synthetic

    dtype = None if is_synthetic(profile) else profile.dtype
    if model:
        source: Any = Path(model) if ("/" not in model or Path(model).exists() or model.startswith((".", "/"))) \
            else model
        return load_model(source, dtype=dtype)
    if is_synthetic(profile):
        from .embedded import ensure_pretrained

        return load_model(ensure_pretrained(profile.world, profile.models["tiny"], profile.pretrain["tiny"]))
    return load_model(profile.model_source(), dtype=dtype)


def cmd_unlearn(args: argparse.Namespace) -> int:
    """``siu unlearn``: see the module's documentation."""
    from .runs import make_target
    from .scale import resolve_profile
    from .train import gathered_weights, unlearn

    profile = resolve_profile(args.profile, args.set)
    bench = load_instance(profile, args.bench)
    check_concept_images(bench, args.concept)
    model, processor = load_profile_model(profile, args.model)
    cid = bench.concept(args.concept).concept_id
    target = make_target(bench, cid, model, processor, fake_name_pool(profile))
    tcfg = replace(profile.unlearn, seed=args.seed, **({"steps": args.steps} if args.steps else {}))
    extra = profile.training_args() if hasattr(profile, "training_args") else {}
    result = unlearn(model, processor, target, args.method, train_config=tcfg, grad_accum=args.grad_accum,
                     training_args=extra or None)
    with gathered_weights(result.model):  # whole on the main process under ZeRO-3
        if _is_main_process():
            _write_outputs(args, profile, cid, target, result)
    return 0


def _write_outputs(args: argparse.Namespace, profile: Any, cid: str, target: Any, result: Any) -> None:
    """The main process's outputs of ``siu unlearn``: the saved run, the history file, the
    history printed one JSON line per step."""
    if args.out:
        result.save(args.out)
        print(f"saved {result.method} on {target.name} to {args.out}")
    if args.history:
        from .results import atomic_write_json

        atomic_write_json(Path(args.history), {"profile": profile.name, "concept": cid, "method": args.method,
                                               "grad_accum": args.grad_accum,
                                               "world_size": int(os.environ.get("WORLD_SIZE", "1")),
                                               "history": result.history})
    for h in result.history:
        print(json.dumps(h))


def cmd_profiles(args: argparse.Namespace) -> int:
    """``siu profiles``: every profile name, with what it runs."""
    from .profiles import PROFILES
    from .scale import MODEL_PROFILES

    for name, p in PROFILES.items():
        print(f"{name:10s} embedded: {', '.join(p.models)} on a synthetic world of {p.world.n_concepts} concepts")
    for name, p in MODEL_PROFILES.items():
        print(f"{name:10s} {p.hub_id} on the {p.instance} instance (images from you)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``siu`` argument parser."""
    parser = argparse.ArgumentParser(prog="siu", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("profiles", help="list the profiles").set_defaults(fn=cmd_profiles)
    u = sub.add_parser("unlearn", help="unlearn one concept with one method")
    u.add_argument("--profile", default=os.environ.get("SIU_PROFILE", "default"),
                   help="default, smoke, llava-7b or llava-13b (default: $SIU_PROFILE or default)")
    u.add_argument("--concept", required=True, help="concept id or name of the instance")
    u.add_argument("--method", default="siu", help="a registered method (default: siu)")
    u.add_argument("--seed", type=int, default=0)
    u.add_argument("--steps", type=int, default=0, help="optimiser steps (default: the profile's)")
    u.add_argument("--model", default=None, help="a model folder or hub id instead of the profile's")
    u.add_argument("--bench", default=None, help="an MMUBench instance folder instead of the profile's")
    u.add_argument("--set", default="", help='profile overrides, e.g. "unlearn.batch_size=1 unlearn.lr=2e-4"')
    u.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimiser step")
    u.add_argument("--out", default=None, help="folder for the adapter (or full model) and unlearn.json")
    u.add_argument("--history", default=None, help="JSON file for the loss history")
    u.set_defaults(fn=cmd_unlearn)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; 1 with one error line for any error a user can cause."""
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except SIUError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
