"""SIU's selection sweep (``make sweep``): the settings around the embedded unlearning default, on
notebook 03's targets protocol, and the rule that picks the default among them.

The profile's ``sweep`` settings (:data:`siu_lib.profiles.EMBEDDED_SWEEP` on the default
profile: LoRA ranks 16, 64 and the paper's 128 over the learning rates where each starts to cost
the other concepts' recognition, a tenfold projector lr, and four settings outside the recipe)
are each run on the profile's first ``unlearn_concepts`` concepts x its seeds with 20 generality
images (:func:`siu_lib.analysis.sweep_runs`; the default setting reuses the targets runs of
:func:`siu_lib.analysis.siu_target_runs`). The rule of :func:`siu_lib.analysis.choose_setting`
(the largest generality EM among the settings that keep the other concepts' recognition
>= 95% of the original's, the own text facts >= 90% and the diversity within 10 points) is
applied and its pick printed beside the profile's default.

It lies outside the chain (``make reproduce``) to keep the chain within its time budget: on 2
cores it takes about 12 minutes for the default profile's 12 settings x 5 concepts x 3 seeds.

Writes ``data/results/<profile>/siu_sweep.csv`` (one row per setting, ``chosen`` marking the
rule's pick), ``siu_sweep.json`` (provenance) and the trade-off figure ``siu_tradeoff.png`` (and
``.pdf``) in the profile's figures folder.

Usage: ``python scripts/siu_sweep.py [--profile default] [--set "unlearn.lr=3e-3 ..."]``
"""

from __future__ import annotations

import argparse
import sys

import siu_lib  # noqa: F401  (first: pins the CPU code path before torch runs anything)
import torch

from siu_lib.analysis import TARGET_FLOORS, siu_target_runs, sweep_runs, sweep_table
from siu_lib.bench import ensure_synthetic, load_benchmark
from siu_lib.embedded import ensure_pretrained
from siu_lib.errors import ConfigError
from siu_lib.evaluate import EvalConfig
from siu_lib.models import load_model
from siu_lib.paths import results_dir
from siu_lib.plots import figure_dir, plot_tradeoff, save_figure
from siu_lib.profiles import Profile, get_profile
from siu_lib.results import atomic_write_csv, atomic_write_json, run_metadata
from siu_lib.world import World


def run_sweep(profile: Profile, progress: bool = True):
    """Run ``profile``'s sweep on its targets protocol, apply the selection rule, and write the
    sweep table, its provenance and the trade-off figure. Returns ``(table, chosen, default)``:
    the sweep table, the rule's pick (``None`` when no setting meets its floors) and the label of
    the setting that equals the profile's default (``None`` when none does).

    Raises :class:`~siu_lib.errors.ConfigError` for a profile without sweep settings."""
    if not profile.sweep:
        raise ConfigError(f"profile {profile.name!r} has no sweep settings")
    world = World(profile.world)
    bench = load_benchmark(ensure_synthetic(profile.world))
    checkpoint = ensure_pretrained(profile.world, profile.models["tiny"], profile.pretrain["tiny"])
    original, processor = load_model(checkpoint)
    eval_cfg = EvalConfig(n_generality_images=min(20, profile.eval_images))
    target_ids = [c.concept_id for c in bench.concepts[:profile.unlearn_concepts]]
    known, _ = siu_target_runs("tiny", original, processor, bench, world.fake_names, profile.unlearn,
                               eval_cfg, target_ids, profile.seeds, profile.name)
    rows, originals = sweep_runs("tiny", original, processor, bench, world.fake_names, profile.unlearn,
                                 profile.sweep, eval_cfg, target_ids, profile.seeds, profile.name,
                                 known=known, progress=progress)
    table = sweep_table(rows, originals)
    chosen = next(iter(table.setting[table.chosen]), None)
    default = next((s.label for s in profile.sweep if s.in_recipe and s.is_base(profile.unlearn)), None)
    out = results_dir(profile.name)
    atomic_write_csv(out / "siu_sweep.csv", table)
    atomic_write_json(out / "siu_sweep.json", run_metadata(
        {"argv": sys.argv[1:], "base": profile.unlearn, "settings": profile.sweep, "eval": eval_cfg,
         "checkpoint": checkpoint.name, "concepts": target_ids, "seeds": list(profile.seeds),
         "rule_floors": TARGET_FLOORS, "chosen": chosen}))
    fig = plot_tradeoff(table, chosen, title=f"SIU settings on {profile.name}'s tiny model")
    save_figure(fig, figure_dir(profile.name) / "siu_tradeoff.png", close=True)
    return table, chosen, default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--set", default="", help="overrides of profile fields (siu_lib.overrides)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    table, chosen, default = run_sweep(get_profile(args.profile, args.set))
    print(table.round(3).to_string())
    print(f"the profile's default is {default!r}; " + (
        "no setting meets the rule's floors" if chosen is None else
        f"the rule picks {chosen!r}: " + ("the same" if chosen == default else "a different setting")))


if __name__ == "__main__":
    main()
