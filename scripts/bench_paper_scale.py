"""What SIU costs on the LLaVA-1.5 architectures (``make bench-paper-scale``, or ``python
scripts/bench_paper_scale.py``): peak memory and seconds per optimiser step of a LoRA CE step,
SIU with a frozen copy of the model as its reference, and SIU with the adapters disabled as its
reference, on random weights in bf16, LoRA rank 128, batch 4 (576 image tokens + 64 text tokens
each), activation checkpointing on, with the analytic estimate of
:func:`siu_lib.paper_scale.memory_estimate` beside each measurement.

On a GPU it runs at full depth (7B, and 13B with ``--sizes 7b,13b``); on a CPU at the reduced
depth ``--text-layers`` / ``--vision-layers`` (default 2 / 2), which shows the frozen copy's
cost and checks the estimate, while the full-depth estimate is printed for sizing. Each step
kind runs in a fresh process, so its peak memory is its own.

Writes ``data/bench/paper_scale_<device>.csv`` (``cpu``, or the GPU's name) and its provenance
``.json``. One command on a GPU machine: ``python scripts/bench_paper_scale.py``.

Usage: ``python scripts/bench_paper_scale.py [--sizes 7b,13b] [--text-layers N --vision-layers N]
[--steps 2]``
"""

from __future__ import annotations

import argparse
import re

import siu_lib  # noqa: F401  (first: pins the CPU code path before torch runs anything)
import pandas as pd
import torch

from siu_lib.paper_scale import STEP_KINDS, StepSetup, llava_config, measure_in_child, memory_estimate
from siu_lib.paths import REPO_ROOT
from siu_lib.results import atomic_write_csv, atomic_write_json, run_metadata

OUT = REPO_ROOT / "data" / "bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    gpu = torch.cuda.is_available()
    parser.add_argument("--sizes", default="7b")
    parser.add_argument("--text-layers", type=int, default=None if gpu else 2)
    parser.add_argument("--vision-layers", type=int, default=None if gpu else 2)
    parser.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    args = parser.parse_args()
    device = torch.cuda.get_device_name() if gpu else "cpu"
    rows = []
    for size in args.sizes.split(","):
        full = {k: round(v, 2) for k, v in memory_estimate(llava_config(size), "siu_adapters").items()}
        print(f"{size} at full depth, SIU with adapters disabled, estimate (GiB): {full}", flush=True)
        for kind in STEP_KINDS:
            setup = StepSetup(size=size, kind=kind, text_layers=args.text_layers, vision_layers=args.vision_layers,
                              steps=args.steps)
            row = measure_in_child(setup)
            rows.append(row)
            print(f"  {kind:13s} {row['text_layers']} text / {row['vision_layers']} vision layers: "
                  f"{row['seconds_per_step']:.2f} s/step, peak {row['peak_gib']:.2f} GiB "
                  f"(estimate {row['estimate_gib']:.2f})", flush=True)
    table = pd.DataFrame(rows)
    base = table[table.kind == "ce"].set_index("size")
    table["seconds_vs_ce"] = table.seconds_per_step / table["size"].map(base.seconds_per_step)
    table["peak_vs_ce"] = table.peak_gib / table["size"].map(base.peak_gib)
    slug = re.sub(r"[^a-z0-9]+", "_", device.lower()).strip("_")
    atomic_write_csv(OUT / f"paper_scale_{slug}.csv", table)
    atomic_write_json(OUT / f"paper_scale_{slug}.json", run_metadata(
        {"sizes": args.sizes, "text_layers": args.text_layers, "vision_layers": args.vision_layers,
         "steps": args.steps, "device": device}))
    print(table[["size", "kind", "text_layers", "seconds_per_step", "peak_gib", "estimate_gib", "seconds_vs_ce",
                 "peak_vs_ce"]].round(3).to_string(index=False))


if __name__ == "__main__":
    main()
