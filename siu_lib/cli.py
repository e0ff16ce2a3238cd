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

from .errors import SIUError
from .setting import check_concept_images, open_setting


def _is_main_process() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def cmd_unlearn(args: argparse.Namespace) -> int:
    """``siu unlearn``: see the module's documentation."""
    from .runs import make_target
    from .scale import resolve_profile
    from .train import gathered_weights, unlearn

    profile = resolve_profile(args.profile, args.set)
    setting = open_setting(profile, args.bench, model=args.model)
    check_concept_images(setting.bench, args.concept)
    model, processor = setting.model()
    cid = setting.bench.concept(args.concept).concept_id
    target = make_target(setting.bench, cid, model, processor, setting.fake_names)
    tcfg = replace(profile.unlearn, seed=args.seed, **({"steps": args.steps} if args.steps else {}))
    result = unlearn(model, processor, target, args.method, train_config=tcfg, grad_accum=args.grad_accum,
                     training_args=setting.run_options["training_args"])
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
