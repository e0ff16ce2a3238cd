"""Specificity at paper scale through ``lmms-eval``: public visual-QA benchmarks on an unlearned
real model, read back into Table 7's layout.

The paper measured specificity on real models as the average over eight public benchmarks
(GQA, VQA-v2, POPE, MME, ...). ``lmms-eval`` runs them; it needs ``torchvision`` and a long list
of pins of its own that do not install beside this package's (``torchvision`` from the registry
does not import beside its ``torch``), so it lives in a separate environment (README, "Run at
paper scale") whose Python :func:`lmms_eval_command` calls (``$SIU_LMMS_PYTHON``). The
unlearned model is written as a plain checkpoint first (:func:`save_for_lmms`: LoRA adapters
merged), since ``lmms-eval`` loads a folder.

:data:`SPECIFICITY_TASKS` is the default set: the four benchmarks the paper names and four more
of LLaVA-1.5's own evaluation suite; each task's score is read from its primary metric
(:data:`PRIMARY_METRICS`) and put on a 0-100 scale.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ConfigError, DataFormatError

#: lmms-eval task names of the default specificity suite
SPECIFICITY_TASKS = ("gqa", "vqav2_val", "pope", "mme", "textvqa_val", "scienceqa_img", "mmbench_en_dev",
                     "vizwiz_vqa_val")
#: task -> (its primary metric in lmms-eval's results, the factor that puts it on 0-100)
PRIMARY_METRICS: dict[str, tuple[str, float]] = {
    "gqa": ("exact_match", 100.0), "vqav2_val": ("exact_match", 100.0), "pope": ("pope_accuracy", 100.0),
    "mme": ("mme_perception_score", 100.0 / 2000.0), "textvqa_val": ("exact_match", 100.0),
    "scienceqa_img": ("exact_match", 100.0), "mmbench_en_dev": ("gpt_eval_score", 1.0),
    "vizwiz_vqa_val": ("exact_match", 100.0),
}


def lmms_eval_command(model_dir: str | Path, output_dir: str | Path, tasks: Sequence[str] = SPECIFICITY_TASKS,
                      batch_size: int = 1, python: str | None = None, model: str = "llava_hf",
                      model_args: Mapping[str, Any] | None = None) -> list[str]:
    """The ``lmms-eval`` command that evaluates the checkpoint in ``model_dir`` on ``tasks``
    and writes its results under ``output_dir``: ``<python> -m lmms_eval --model llava_hf
    --model_args pretrained=<model_dir>,... --tasks a,b --batch_size N --output_path <dir>
    --log_samples``. ``python`` defaults to ``$SIU_LMMS_PYTHON`` (the separate environment's),
    else this interpreter. :class:`ConfigError` for no task, a task name with a comma, or a
    batch size below 1."""
    if not tasks or any("," in t or not t for t in tasks):
        raise ConfigError(f"tasks must be non-empty names without commas, got {list(tasks)}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    args = {"pretrained": str(model_dir), **(model_args or {})}
    python = python or os.environ.get("SIU_LMMS_PYTHON") or sys.executable
    return [python, "-m", "lmms_eval", "--model", model,
            "--model_args", ",".join(f"{k}={v}" for k, v in args.items()),
            "--tasks", ",".join(tasks), "--batch_size", str(batch_size),
            "--output_path", str(output_dir), "--log_samples"]


def save_for_lmms(model: Any, processor: Any, folder: str | Path) -> Path:
    """Write an unlearned model as a plain checkpoint ``lmms-eval`` can load: LoRA adapters merged
    into the weights (a peft model is merged in place: call it after every other evaluation),
    with its processor. Returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    plain = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    plain.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def find_results(output_dir: str | Path) -> Path:
    """The newest ``*_results.json`` (or ``results.json``) under ``output_dir``, where
    ``lmms-eval`` writes them (in a folder per model); :class:`DataFormatError` when none."""
    found = sorted(Path(output_dir).rglob("*results.json"), key=lambda p: (p.stat().st_mtime, p.name))
    if not found:
        raise DataFormatError(f"no lmms-eval results file (*results.json) under {output_dir}")
    return found[-1]


def read_results(path: str | Path) -> pd.DataFrame:
    """The per-task metrics of an ``lmms-eval`` results file: one row per task and metric with its
    ``filter``, ``value`` and ``stderr`` (None when not reported); the ``alias`` entries and
    non-numeric values are skipped. :class:`DataFormatError` names a file without a ``results``
    mapping."""
    data = json.loads(Path(path).read_text())
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, dict):
        raise DataFormatError(f"{path} has no 'results' mapping of tasks to metrics")
    rows = []
    for task, metrics in results.items():
        if not isinstance(metrics, dict):
            continue
        for key, value in metrics.items():
            name, _, filt = key.partition(",")
            if name == "alias" or name.endswith("_stderr") or isinstance(value, bool) \
                    or not isinstance(value, (int, float)):
                continue
            err = metrics.get(f"{name}_stderr,{filt}" if filt else f"{name}_stderr")
            rows.append({"task": task, "metric": name, "filter": filt or "none", "value": float(value),
                         "stderr": float(err) if isinstance(err, (int, float)) else None})
    return pd.DataFrame(rows, columns=["task", "metric", "filter", "value", "stderr"])


def task_scores(results: pd.DataFrame, tasks: Sequence[str] | None = None) -> dict[str, float]:
    """Each task's score on 0-100 from its primary metric (:data:`PRIMARY_METRICS`; a task
    outside it must report exactly one metric, read as a fraction). :class:`DataFormatError`
    names a task whose primary metric is missing."""
    out = {}
    for task in tasks or list(dict.fromkeys(results["task"])):
        rows = results[results["task"] == task]
        if task in PRIMARY_METRICS:
            metric, factor = PRIMARY_METRICS[task]
            rows = rows[rows["metric"] == metric]
        else:
            factor = 100.0
        if len(rows) != 1:
            raise DataFormatError(f"task {task!r}: expected one primary metric, found "
                                  f"{sorted(results[results['task'] == task]['metric'])}")
        out[task] = float(rows["value"].iloc[0]) * factor
    return out


def table7_rows(scores: Mapping[str, Mapping[str, float]], original: str = "original") -> pd.DataFrame:
    """Table 7's layout at paper scale: one row per method (``scores``: method -> task -> score),
    one column per task, their ``mean`` (the paper's specificity) and, when the ``original``
    model's row is there, the ``ratio`` of each mean to its mean."""
    table = pd.DataFrame(scores).T
    table.index.name = "method"
    table["mean"] = table.mean(axis=1)
    if original in table.index:
        table["ratio"] = table["mean"] / table.loc[original, "mean"]
    return table.reset_index()


__all__ = ["PRIMARY_METRICS", "SPECIFICITY_TASKS", "find_results", "lmms_eval_command", "read_results",
           "save_for_lmms", "table7_rows", "task_scores"]
