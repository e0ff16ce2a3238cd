"""Probe a pre-training recipe: what an embedded model knows, on the default world's
generality images (the rows of ``pretrain.csv``), without running the chain.

Two uses, both recorded with their output in ``docs/decisions.md``:

* ``python scripts/probe_pretrain.py tiny [--seed N] [--set "pretrain.tiny.steps=3000 ..."]``:
  pre-train the profile's checkpoint of one size (cached like the chain's, under its key) and
  print its knowledge report;
* ``python scripts/probe_pretrain.py tiny --continue-from data/checkpoints/<key> --steps 1200
  --lr 5e-4 [--stage grounding|full]``: train a cached checkpoint further on the world's stream
  (nothing is written) and print the report of the result; a quick way to try a later stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import siu_lib  # noqa: F401  (first: pins the CPU code path before torch runs anything)

from siu_lib.bench import ensure_synthetic, load_benchmark
from siu_lib.embedded import PretrainConfig, ensure_pretrained, evaluate_pretrained, pretrain
from siu_lib.models import Example, load_model
from siu_lib.profiles import get_profile
from siu_lib.world import World


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("size", help="a model size of the profile (tiny, small)")
    ap.add_argument("--profile", default="default")
    ap.add_argument("--set", default=None, help="overrides, as the chain's SET")
    ap.add_argument("--seed", type=int, default=None, help="pre-training seed (default: the profile's)")
    ap.add_argument("--continue-from", default=None, help="a checkpoint folder to train further")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--stage", choices=("grounding", "full"), default="grounding")
    args = ap.parse_args()

    profile = get_profile(args.profile, args.set)
    world = World(profile.world)
    bench = load_benchmark(ensure_synthetic(profile.world))
    t0 = time.perf_counter()
    if args.continue_from:
        model, processor = load_model(args.continue_from)
        stream = world.pretraining_stream(7, grounding_from=0 if args.stage == "grounding" else None)
        cfg = PretrainConfig(steps=args.steps, batch_size=16, lr=args.lr, bucket_batches=8, seed=7)

        def next_example(_rng):
            record = next(stream)
            return Example(record.image, record.question, record.answer)

        model.train()
        pretrain(model, processor, next_example, cfg)
    else:
        train_cfg = profile.pretrain[args.size]
        if args.seed is not None:
            train_cfg = dataclasses.replace(train_cfg, seed=args.seed)
        folder = ensure_pretrained(profile.world, profile.models[args.size], train_cfg)
        print("checkpoint:", folder.name)
        model, processor = load_model(folder)
    print(f"trained in {time.perf_counter() - t0:.0f} s (0 when cached)")
    report = evaluate_pretrained(model, processor, bench, world, images_per_concept=profile.eval_images)
    row = dataclasses.asdict(report)
    per_concept = row.pop("recognition_per_concept")
    row["recognition_min"] = min(per_concept.values())
    for key, value in row.items():
        print(f"{key:>18}: {100 * value:.1f}")


if __name__ == "__main__":
    main()
