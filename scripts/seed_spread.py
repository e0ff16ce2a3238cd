"""Pre-training seed spread (``make seeds``): how far the embedded model's knowledge (the stand-in
model's targets) and SIU's targets on it move with nothing changed but the pre-training seed.

For each pre-training seed of one embedded size (default ``tiny``, seeds 0, 1, 2; seed 0 is the
profile's own checkpoint, the one every other table uses) the checkpoint is reused from the cache
or pre-trained (about ten minutes per seed on 2 cores, timed as in notebook 02), scored like
notebook 02 (:func:`siu_lib.embedded.pretrain_table`), and unlearned with SIU on notebook 03's
protocol (:func:`siu_lib.analysis.siu_target_runs`: the profile's unlearning config, its
first ``unlearn_concepts`` concepts x its seeds, 20 generality images); beside it, the
never-seen reference of the same seed (those concepts withheld from every picture of
pre-training, another ten minutes when not cached; :func:`siu_lib.analysis.never_seen_runs`)
is scored on the same concepts, unless ``--no-reference``. No per-run JSON is
written: run-file names do not cover the checkpoint, and those of the profile's own checkpoint
must not be overwritten.

Writes ``data/results/<profile>/seed_spread.csv`` (one row per pre-training seed) and
``seed_spread.json`` (provenance), and prints the mean and standard deviation of every column.

Usage: ``python scripts/seed_spread.py [--profile default] [--size tiny] [--seeds 0,1,2]
[--no-reference]``
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, replace

import siu_lib  # noqa: F401  (first: pins the CPU code path before torch runs anything)
import pandas as pd
import torch

from siu_lib.bench import ensure_synthetic, load_benchmark
from siu_lib.embedded import ensure_pretrained, pretrain_table
from siu_lib.errors import UnknownNameError
from siu_lib.evaluate import EvalConfig
from siu_lib.analysis import never_seen_runs, seed_spread_row, siu_target_runs, siu_targets
from siu_lib.models import load_model
from siu_lib.paths import results_dir
from siu_lib.profiles import get_profile
from siu_lib.results import atomic_write_csv, atomic_write_json, run_metadata
from siu_lib.world import World


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--seeds", default="0,1,2", help="pre-training seeds, comma-separated")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the never-seen reference (saves its pre-training)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    profile = get_profile(args.profile)
    if args.size not in profile.models:
        raise UnknownNameError(f"unknown model size {args.size!r} in profile {profile.name!r}; "
                               f"known: {sorted(profile.models)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    world = World(profile.world)
    bench = load_benchmark(ensure_synthetic(profile.world))
    eval_cfg = EvalConfig(n_generality_images=min(20, profile.eval_images))
    concept_ids = [c.concept_id for c in bench.concepts[:profile.unlearn_concepts]]
    rows = []
    for seed in seeds:
        train_cfg = replace(profile.pretrain[args.size], seed=seed)
        print(f"== pre-training seed {seed}", flush=True)
        folder = ensure_pretrained(profile.world, profile.models[args.size], train_cfg)
        table, per_concept = pretrain_table({args.size: folder}, bench, world, profile.eval_images)
        original, processor = load_model(folder)
        runs, originals = siu_target_runs(args.size, original, processor, bench, world.fake_names,
                                          profile.unlearn, eval_cfg, concept_ids, profile.seeds)
        reference = None
        if not args.no_reference:
            ref_folder = ensure_pretrained(profile.world, profile.models[args.size],
                                           replace(train_cfg, withheld=tuple(concept_ids)))
            ref_model, ref_processor = load_model(ref_folder)
            reference = never_seen_runs(args.size, original, processor, ref_model, ref_processor,
                                        bench, eval_cfg, concept_ids, fake_names=world.fake_names)
        rows.append(seed_spread_row(seed, table.iloc[0], per_concept[args.size],
                                    siu_targets(runs, originals, reference), folder.name))
        print(pd.DataFrame(rows[-1:]).T.to_string(header=False), flush=True)
    spread = pd.DataFrame(rows)
    out = results_dir(profile.name)
    atomic_write_csv(out / "seed_spread.csv", spread)
    atomic_write_json(out / "seed_spread.json", run_metadata(
        {"argv": sys.argv[1:], "size": args.size, "pretrain_seeds": seeds,
         "pretrain": asdict(profile.pretrain[args.size]), "unlearn": asdict(profile.unlearn),
         "eval": asdict(eval_cfg), "concepts": concept_ids, "unlearn_seeds": list(profile.seeds),
         "never_seen_reference": not args.no_reference}))
    numeric = spread.select_dtypes("number").drop(columns="pretrain_seed")
    print(pd.DataFrame({"mean": numeric.mean(), "std": numeric.std(ddof=0),
                        "min": numeric.min(), "max": numeric.max()}).round(4).to_string())


if __name__ == "__main__":
    main()
