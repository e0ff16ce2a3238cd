"""Multi-concept unlearning (the paper's Table 3), at once and one request after another.

**At once**: the first ``k`` concepts are unlearned in one run (:func:`siu_lib.train.unlearn`
with several targets): their records merged, each keeping its own fake name and token mask,
the vocabulary mask the union of their names. The merged data gets as many passes as a
single-concept run gives its own: ``k`` times the single run's steps (every record seen about
once, as in the paper's 6 steps of 4 over 25 records).

**One after another** (beyond the paper): the same ``k`` concepts arrive as ``k`` requests, each
unlearned with the single run's steps from the model the previous request left
(:func:`siu_lib.train.unlearn_sequentially`). Recent multimodal-unlearning benchmarks report
that methods that work on one batch degrade when the same requests arrive one by one.

Each forgotten concept is evaluated as in Table 1, except that no forgotten concept is asked
to be recognised or verified by the others' specificity (``forgotten`` of
:func:`siu_lib.evaluate.evaluate_unlearning`): with all twenty forgotten, specificity is the
general visual QA and the concepts' text facts. A row is the mean over the ``k`` concepts.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pandas as pd

from .bench import Benchmark
from .errors import ConfigError
from .evaluate import EvalConfig, evaluate_unlearning
from .metrics import TABLE1_METRICS
from .progress import progress_bar
from .runs import make_target
from .train import TrainConfig, unlearn, unlearn_sequentially

#: how the concepts arrive: in one request, or one request after another
MODES = ("at_once", "sequential")


def _mean_row(reports: Sequence[Any]) -> dict[str, float]:
    """The mean over the forgotten concepts' evaluation reports of Table 1's metrics, the
    specificity ratio and each specificity task's accuracy."""
    rows = [{**rep.row(), "specificity_ratio": rep.metrics["specificity"].details.get("ratio_overall"),
             **{f"spec_{k}": v for k, v in rep.specificity_accuracy.items()}} for rep in reports]
    return pd.DataFrame(rows).mean(numeric_only=True).to_dict()


def _evaluated(model: Any, original: Any, processor: Any, bench: Benchmark, ids: Sequence[str],
               eval_cfg: EvalConfig, originals: dict[str, Any]) -> dict[str, float]:
    """:func:`_mean_row` of ``model`` evaluated on each forgotten concept of ``ids``."""
    return _mean_row([evaluate_unlearning(model, original, processor, bench, cid, eval_cfg,
                                          original_specificity=originals[cid].specificity_accuracy, forgotten=ids)
                      for cid in ids])


def multi_concept_runs(model_name: str, original: Any, processor: Any, bench: Benchmark,
                       fake_names: Sequence[str], methods: Sequence[str], train_cfg: TrainConfig,
                       eval_cfg: EvalConfig, counts: Sequence[int], modes: Sequence[str] = MODES,
                       progress: bool = True, training_args: dict[str, Any] | None = None) -> pd.DataFrame:
    """One row per method (``"original"`` first) × count ``k`` × mode (:data:`MODES`): the
    first ``k`` concepts unlearned (module docstring), the mean over them of every Table 1
    metric, the specificity ratio and each specificity task's accuracy, with the ``steps``
    trained (in all), the ``records`` and the seconds. The original model's row for each
    ``k`` is evaluated with the same items. ``train_cfg`` is the single-concept run's. A
    specificity task's column is left out when some count leaves it no item (with every
    concept forgotten: the others' recognition and yes/no), so no cell is missing.
    ``training_args``: the machine's ``TrainingArguments`` fields (:func:`siu_lib.train.unlearn`).
    Each run trains a deep copy of ``original``."""
    n = len(bench.concepts)
    bad = [k for k in counts if not 1 <= k <= n]
    if bad or not counts:
        raise ConfigError(f"counts must be between 1 and the benchmark's {n} concepts, got {list(counts)}")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ConfigError(f"unknown mode(s) {unknown}; known: {MODES}")
    rows = []
    for k in counts:
        ids = [c.concept_id for c in bench.concepts[:k]]
        base = {cid: evaluate_unlearning(original, original, processor, bench, cid, eval_cfg, forgotten=ids)
                for cid in ids}
        rows.append({"model": model_name, "method": "original", "concepts": k, "mode": "-", "steps": 0,
                     "records": 0, "train_seconds": 0.0,
                     # the original against itself: the same items, a ratio of 1 by definition
                     **_mean_row([base[cid] for cid in ids]), "specificity_ratio": 1.0})
        jobs = [(m, mode) for m in methods for mode in modes]
        for method, mode in progress_bar(jobs, desc=f"{k} concepts", progress=progress):
            targets = [make_target(bench, cid, original, processor, fake_names) for cid in ids]
            t0 = time.perf_counter()
            if mode == "at_once":
                tcfg = replace(train_cfg, steps=train_cfg.steps * k)
                result = unlearn(copy.deepcopy(original), processor, targets, method, train_config=tcfg,
                                 training_args=training_args)
                model, steps, n_records = result.model, tcfg.steps, len(result.records)
            else:
                results = unlearn_sequentially(copy.deepcopy(original), processor, targets, method,
                                               train_config=train_cfg, training_args=training_args)
                model, steps = results[-1].model, train_cfg.steps * k
                n_records = sum(len(r.records) for r in results)
            seconds = time.perf_counter() - t0
            rows.append({"model": model_name, "method": method, "concepts": k, "mode": mode, "steps": steps,
                         "records": n_records, "train_seconds": round(seconds, 2),
                         **_evaluated(model, original, processor, bench, ids, eval_cfg, base)})
    table = pd.DataFrame(rows)
    # a specificity task with no item left at some count (the others' recognition and yes/no
    # once every concept is forgotten) is left out rather than written as a missing value
    partial = [c for c in table.columns if c.startswith("spec_") and table[c].isna().any()]
    return table.drop(columns=partial)


#: Table 3's columns: Table 1's metrics and the specificity ratio
TABLE3_METRICS = (*TABLE1_METRICS, "specificity_ratio")


__all__ = ["MODES", "TABLE3_METRICS", "multi_concept_runs"]
