"""Speed and memory benchmarks (``make bench``); results go to ``data/bench/*.csv``.

* ``world.csv``: the world renderer's images/second, the MMUBench writer's and loader's time.
* ``pretrain.csv``: the embedded models' pre-training wall time and what they know (the
  stand-in model's knowledge targets), for the ``default`` profile's checkpoints (built, and timed, when missing).
* ``pretrain_step_cost.csv``: seconds per pre-training step of each embedded size (alignment
  stage and full mixture, in the profile's precision and the other), measured side by side,
  and the wall time the profile's step count (grounding stage included) would take here against the
  30-minute pre-training budget.
* ``cpu_path_cost.csv``: what the pinned CPU code path (:mod:`siu_lib.cpu`) costs here: seconds
  per pre-training step of the ``tiny`` model on the pinned path and on this CPU's native
  kernels (``SIU_CPU_PATH=native``), each in fresh child processes, alternated, and their ratio.
* ``step_cost.csv``: seconds and peak memory of one unlearning step per method, with ratios to
  a plain CE step on the same batch. The step is the loss's forward and backward pass (no
  optimiser update, no autocast) on a batch of the first SIU records of one concept, with the
  ``default`` profile's LoRA settings (dropout included); its own provenance,
  ``step_cost.json``, records them. Times are medians of interleaved repeats measured side by
  side in one process (absolute times drift on a shared machine; ratios do not); peak memory
  is measured in a fresh child process per method (on a CPU the sampled peak RSS during the
  steps minus the RSS before them; ``torch.cuda.max_memory_allocated`` on a GPU).

Usage: ``python scripts/bench.py [--only world|pretrain|pretrain_step|cpu_path|step] [--sizes tiny,small] [--repeats N]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import siu_lib  # noqa: F401  (first: pins the CPU code path before torch runs anything)
import pandas as pd
import torch

from siu_lib import cpu
from siu_lib.bench import load_benchmark, write_synthetic
from siu_lib.methods import UnlearnTarget, get_method
from siu_lib.embedded import build_embedded_model, embedded_config, train_tokenizer
from siu_lib.paths import REPO_ROOT
from siu_lib.results import atomic_write_csv, atomic_write_json, run_metadata
from siu_lib.train import TrainConfig, collate_records, method_step_loss, prepare_model, vocab_mask_for
from siu_lib.world import World, WorldConfig

OUT = REPO_ROOT / "data" / "bench"
#: the methods timed against a plain CE step ("ce": the CE loss alone on the same batch)
STEP_METHODS = ("ce", "siu", "ga_kl", "npo")


def bench_world(n_images: int = 400) -> pd.DataFrame:
    """Renderer throughput and the default instance's build and load times."""
    world = World(WorldConfig())
    t0 = time.perf_counter()
    for i in range(n_images):
        world.render(i % len(world.concepts), i, "pretrain")
    render = n_images / (time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_synthetic(world, Path(tmp) / "inst", progress=False)
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        bench = load_benchmark(Path(tmp) / "inst")
        load = time.perf_counter() - t0
    n = sum(1 + len(bench.generality_image_paths(c.concept_id)) for c in bench.concepts)
    return pd.DataFrame([
        {"what": "render_images_per_second", "value": round(render, 1)},
        {"what": "build_default_instance_seconds", "value": round(build, 2)},
        {"what": "load_default_instance_seconds", "value": round(load, 3)},
        {"what": "default_instance_concept_images", "value": n},
    ])


def bench_pretrain(profile_name: str = "default") -> pd.DataFrame:
    """Pre-training time and knowledge of the profile's embedded checkpoints (cached ones are
    reused: their recorded wall time is the one measured when they were built)."""
    from siu_lib.bench import ensure_synthetic
    from siu_lib.embedded import ensure_pretrained, pretrain_table
    from siu_lib.profiles import get_profile

    profile = get_profile(profile_name)
    bench = load_benchmark(ensure_synthetic(profile.world))
    checkpoints = {size: ensure_pretrained(profile.world, profile.models[size], profile.pretrain[size])
                   for size in profile.models}
    table, _ = pretrain_table(checkpoints, bench, World(profile.world), profile.eval_images)
    return table


def bench_pretrain_steps(sizes: list[str], profile_name: str = "default", n_steps: int = 24) -> pd.DataFrame:
    """Seconds per pre-training step of each embedded size, measured side by side in one run
    (:func:`siu_lib.embedded.pretrain_step_seconds`), in the profile's precision and in the
    other one, with the wall time the profile's step count would take on this machine and its
    ratio to the 30-minute pre-training budget: a check of the time target in a few minutes.
    ``native_bf16`` in the provenance says whether this CPU has bfloat16 arithmetic
    (:func:`siu_lib.results.cpu_has_native_bf16`, which the profile's precision follows)."""
    from siu_lib.embedded import PRETRAIN_BUDGET_SECONDS, pretrain_step_seconds, projected_pretrain_seconds
    from siu_lib.profiles import get_profile

    profile = get_profile(profile_name)
    world = World(profile.world)
    rows = []
    for size in sizes:
        cfg = profile.pretrain[size]
        for bf16 in (cfg.bf16, not cfg.bf16):
            run_cfg = replace(cfg, bf16=bf16)
            # the other precision gets one bucket of steps: without native bf16 a step of it
            # can take over ten seconds
            steps = n_steps if bf16 == cfg.bf16 else cfg.bucket_batches
            per_step = pretrain_step_seconds(world, profile.models[size], run_cfg, n_steps=steps,
                                             warmup_steps=1)
            print(size, "bf16" if bf16 else "fp32", per_step, flush=True)
            projected = projected_pretrain_seconds(per_step, run_cfg)
            rows.append({"model": size, "bf16": bf16, "profile_precision": bf16 == cfg.bf16,
                         "timed_steps": steps,
                         "seconds_per_step_align": round(per_step["align"], 4),
                         "seconds_per_step_full": round(per_step["full"], 4),
                         "profile_steps": cfg.steps + cfg.grounding_steps, "projected_seconds": round(projected, 1),
                         "budget_ratio": round(projected / PRETRAIN_BUDGET_SECONDS, 3)})
    return pd.DataFrame(rows)


def _child_pretrain_steps(size: str, n_steps: int) -> dict[str, float]:
    """Seconds per pre-training step of ``size`` in the ``default`` profile's config, in this
    (fresh) process, and the code path it ran."""
    from siu_lib.embedded import pretrain_step_seconds
    from siu_lib.profiles import PROFILES

    profile = PROFILES["default"]
    per_step = pretrain_step_seconds(World(profile.world), profile.models[size], profile.pretrain[size],
                                     n_steps=n_steps, warmup_steps=1)
    return {**per_step, "path": cpu.current_path(), "capability": cpu.cpu_path_info()["capability"]}


def bench_cpu_path(size: str = "tiny", n_steps: int = 16, rounds: int = 2) -> pd.DataFrame:
    """Seconds per pre-training step on the pinned path and on the native one, each measured in
    a fresh child process (the path is fixed when torch starts), in ``rounds`` alternated pairs,
    with the ratio of their medians: what reproducibility costs on this CPU."""
    base = {k: v for k, v in os.environ.items() if k not in cpu.PINNED_ENV and k != cpu.SWITCH}
    envs = {"avx2": {**base, cpu.SWITCH: "avx2"}, "native": {**base, cpu.SWITCH: "native"}}
    seen: dict[str, list[dict]] = {p: [] for p in envs}
    for _ in range(rounds):
        for path, env in envs.items():
            out = subprocess.run([sys.executable, __file__, "--child-pretrain-steps", size, str(n_steps)],
                                 env=env, capture_output=True, text=True, check=True)
            got = json.loads(out.stdout.strip().splitlines()[-1])
            assert got["path"] == path, (path, got)  # the child really ran that path
            print(path, got, flush=True)
            seen[path].append(got)
    rows = []
    for stage in ("align", "full"):
        pinned = statistics.median(r[stage] for r in seen["avx2"])
        native = statistics.median(r[stage] for r in seen["native"])
        rows.append({"model": size, "stage": stage, "timed_steps": n_steps, "rounds": rounds,
                     "native_capability": seen["native"][0]["capability"],
                     "seconds_per_step_pinned": round(pinned, 4),
                     "seconds_per_step_native": round(native, 4),
                     "pinned_to_native_ratio": round(pinned / native, 3)})
    return pd.DataFrame(rows)


def _step_config() -> TrainConfig:
    """The LoRA settings unlearning steps are timed with: the ``default`` profile's own
    (:data:`siu_lib.profiles.EMBEDDED_TRAIN`), rank, alpha and dropout as notebook 03 trains."""
    from siu_lib.profiles import get_profile

    return get_profile("default").unlearn


def _setup(size: str, batch: int, method: str):
    """A LoRA-wrapped embedded model of ``size`` (untrained weights: cost does not depend on
    them) with :func:`_step_config`'s LoRA, a batch of ``batch`` SIU records and the method to
    time."""
    torch.manual_seed(0)
    world = World(WorldConfig())
    tok = train_tokenizer(world.texts(), embedded_config(size).vocab_size)
    model, processor = build_embedded_model(embedded_config(size), tok)
    target = UnlearnTarget(world.concepts[0], world.forget_image(0), world.concepts, world.fake_names)
    spec = get_method("siu")
    records = spec.build_data(target, spec.config)[:batch]
    wrapped, ref = prepare_model(model, _step_config())
    batch_t = collate_records(processor, records)
    vmask = vocab_mask_for(tok, target.name, model.get_output_embeddings().weight.shape[0])
    m = get_method("po" if method == "ce" else method)  # the PO loss is the plain answer CE
    return wrapped, ref, batch_t, vmask, m, m.config


def _one_step(state) -> float:
    model, ref, batch, vmask, method, mcfg = state
    t0 = time.perf_counter()
    loss, _, _ = method_step_loss(model, batch, method, mcfg, vmask, ref)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def _child_memory(size: str, batch: int, method: str, steps: int = 3) -> float:
    """Peak memory (MB) that ``steps`` training steps add, measured in this (fresh) process:
    on a GPU ``torch.cuda.max_memory_allocated``; on a CPU the peak resident set size sampled
    every millisecond during the steps, minus the resident size just before them."""
    import threading

    import psutil

    state = _setup(size, batch, method)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        for _ in range(steps):
            _one_step(state)
        return torch.cuda.max_memory_allocated() / 2**20
    proc = psutil.Process()
    baseline = proc.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for _ in range(steps):
        _one_step(state)
    done.set()
    sampler.join()
    return (peak[0] - baseline) / 2**20


def bench_steps(sizes: list[str], batch: int = 4, repeats: int = 15) -> pd.DataFrame:
    """Interleaved step timings per method and child-process peak memory."""
    rows = []
    for size in sizes:
        states = {m: _setup(size, batch, m) for m in STEP_METHODS}
        for m in STEP_METHODS:  # warm-up
            _one_step(states[m])
        times: dict[str, list[float]] = {m: [] for m in STEP_METHODS}
        for _ in range(repeats):
            for m in STEP_METHODS:
                times[m].append(_one_step(states[m]))
        mem = {}
        for m in STEP_METHODS:
            out = subprocess.run([sys.executable, __file__, "--child-memory", size, str(batch), m],
                                 capture_output=True, text=True, check=True)
            mem[m] = json.loads(out.stdout.strip().splitlines()[-1])["peak_memory_mb"]
        ce_t, ce_m = statistics.median(times["ce"]), mem["ce"]
        for m in STEP_METHODS:
            t = statistics.median(times[m])
            rows.append({"model": size, "method": m, "batch": batch, "seconds_per_step": round(t, 4),
                         "peak_memory_mb": round(mem[m], 1), "time_ratio_to_ce": round(t / ce_t, 3),
                         "memory_ratio_to_ce": round(mem[m] / ce_m, 3) if ce_m > 0 else float("nan")})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("world", "pretrain", "pretrain_step", "cpu_path", "step"), default=None)
    parser.add_argument("--sizes", default="tiny,small")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--child-memory", nargs=3, metavar=("SIZE", "BATCH", "METHOD"), help=argparse.SUPPRESS)
    parser.add_argument("--child-pretrain-steps", nargs=2, metavar=("SIZE", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.child_pretrain_steps:
        size, steps = args.child_pretrain_steps
        print(json.dumps(_child_pretrain_steps(size, int(steps))))
        return
    if args.child_memory:
        size, batch, method = args.child_memory
        print(json.dumps({"peak_memory_mb": _child_memory(size, int(batch), method)}))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "world"):
        world = bench_world()
        atomic_write_csv(OUT / "world.csv", world)
        print(world.to_string(index=False))
    if args.only in (None, "pretrain"):
        table = bench_pretrain()
        atomic_write_csv(OUT / "pretrain.csv", table)
        print(table.to_string(index=False))
    if args.only in (None, "pretrain_step"):
        cost = bench_pretrain_steps(args.sizes.split(","))
        atomic_write_csv(OUT / "pretrain_step_cost.csv", cost)
        print(cost.to_string(index=False))
    if args.only in (None, "cpu_path"):
        path_cost = bench_cpu_path()
        atomic_write_csv(OUT / "cpu_path_cost.csv", path_cost)
        print(path_cost.to_string(index=False))
    if args.only in (None, "step"):
        steps = bench_steps(args.sizes.split(","), repeats=args.repeats)
        atomic_write_csv(OUT / "step_cost.csv", steps)
        print(steps.to_string(index=False))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    meta = run_metadata({"argv": sys.argv[1:]}, None, device=device)
    # the parts often run alone keep their own records, so that running one never replaces
    # another's provenance
    if args.only in (None, "pretrain_step"):
        atomic_write_json(OUT / "pretrain_step_cost.json", meta)
    if args.only in (None, "cpu_path"):
        atomic_write_json(OUT / "cpu_path_cost.json", meta)
    if args.only in (None, "step"):
        step_config = {**meta["config"], "step_train_config": asdict(_step_config()), "repeats": args.repeats}
        atomic_write_json(OUT / "step_cost.json", {**meta, "config": step_config})
    if args.only in (None, "world", "pretrain"):
        atomic_write_json(OUT / "provenance.json", meta)


if __name__ == "__main__":
    main()
