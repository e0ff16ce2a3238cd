"""The paper's case studies: the butterfly effect and example generations of every method.

**Butterfly effect** (:func:`butterfly_runs`). The paper observes that after unlearning a
concept A, its partner B in a group photo with A is misnamed too, while B alone is still
named (a "positive butterfly effect"). Here: for each method and each (A, B) pair the
benchmark's group photos show, A is unlearned (seed 0, the run's steps), and the original
and the unlearned model are asked who is in each group photo of A and B and who is in B's own
generality images. A row per (method, pair) says how often A and B are named in the group
photos and how often B is named alone; :func:`butterfly_table` averages them over pairs.

**Cases** (:func:`case_generations`). Every method's answers on the same generality images
and prompts, read back from the runs the chain already wrote (no model runs), for
:func:`siu_lib.plots.plot_cases`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .bench import Benchmark
from .errors import ConfigError
from .generate import generate
from .metrics import reveals_open
from .progress import progress_bar
from .runs import RunSpec, load_run, make_target
from .train import TrainConfig, unlearn
from .world import GROUP_QUESTIONS

#: the question asked about each picture: a group photo and the partner alone
WHO_QUESTION = "Who is in this picture?"


def group_pairs(bench: Benchmark, concepts: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """The (A, B) pairs of the benchmark's group photos, in manifest order, each once (A the
    photo's ``left``); with ``concepts``, only the pairs whose A is one of them."""
    pairs = list(dict.fromkeys((g.left, g.right) for g in bench.group_photos))
    if concepts is not None:
        keep = set(concepts)
        pairs = [p for p in pairs if p[0] in keep]
    if not pairs:
        raise ConfigError(f"the benchmark {bench.name!r} has no group photo of the concepts {concepts}")
    return pairs


def _asked(model: Any, processor: Any, bench: Benchmark, a: str, b: str, n_alone: int,
           max_new_tokens: int) -> list[dict[str, Any]]:
    """Every group photo of (A, B) with each group question, and B's first ``n_alone``
    generality images with :data:`WHO_QUESTION`, answered by ``model``."""
    photos = [g.image for g in bench.group_photos if (g.left, g.right) == (a, b)]
    jobs = [("group", p, q) for p in photos for q in (WHO_QUESTION, GROUP_QUESTIONS[0])]
    jobs += [("alone", p, WHO_QUESTION) for p in bench.generality_image_paths(b)[:n_alone]]
    answers = generate(model, processor, [(bench.load_image(p), q) for _, p, q in jobs],
                       max_new_tokens=max_new_tokens, progress=False)
    return [{"kind": k, "image": p, "question": q, "answer": ans} for (k, p, q), ans in zip(jobs, answers)]


def _named(answers: list[str], name: str) -> float:
    """% of ``answers`` that name ``name`` (the EM's open-prompt test)."""
    if not answers:
        raise ConfigError(f"no answer to count {name!r} in")
    return 100.0 * sum(reveals_open(x, name) for x in answers) / len(answers)


def butterfly_counts(answers: Sequence[dict[str, Any]], name_a: str, name_b: str) -> dict[str, float]:
    """The butterfly effect's three rates (%) from answers (``kind`` "group" or "alone",
    ``answer``): A named in the group photos' answers, B named in them, and B named in the
    answers about B alone (each by the EM's open-prompt test, :func:`siu_lib.metrics.reveals_open`).
    :class:`ConfigError` when a kind has no answer."""
    group = [r["answer"] for r in answers if r["kind"] == "group"]
    alone = [r["answer"] for r in answers if r["kind"] == "alone"]
    return {"a_named_in_group": _named(group, name_a), "b_named_in_group": _named(group, name_b),
            "b_named_alone": _named(alone, name_b)}


def _butterfly_row(method: str, a: str, b: str, bench: Benchmark, answers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"method": method, "a": a, "b": b,
            **butterfly_counts(answers, bench.concept(a).name, bench.concept(b).name)}


def butterfly_runs(original: Any, processor: Any, bench: Benchmark, fake_names: Sequence[str],
                   methods: Sequence[str], train_cfg: TrainConfig, pairs: Sequence[tuple[str, str]],
                   n_alone: int = 4, max_new_tokens: int = 32,
                   progress: bool = True) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The butterfly effect (module docstring): one row per method (``"original"`` first) and
    pair, with ``a_named_in_group``, ``b_named_in_group`` and ``b_named_alone`` in %; and every
    answer (``method``, ``a``, ``b``, ``kind`` "group" or "alone", ``image``, ``question``,
    ``answer``) for the case figure. ``train_cfg`` trains every method (its ``seed`` and
    ``steps``); the original model is never modified."""
    if not methods:
        raise ConfigError("butterfly_runs needs at least one method")
    rows, answers = [], []
    for a, b in pairs:
        got = _asked(original, processor, bench, a, b, n_alone, max_new_tokens)
        rows.append(_butterfly_row("original", a, b, bench, got))
        answers += [{"method": "original", "a": a, "b": b, **r} for r in got]
    jobs = [(m, a, b) for m in methods for a, b in pairs]
    for method, a, b in progress_bar(jobs, desc="butterfly runs", progress=progress):
        target = make_target(bench, a, original, processor, fake_names)
        result = unlearn(copy.deepcopy(original), processor, target, method, train_config=train_cfg)
        got = _asked(result.model, processor, bench, a, b, n_alone, max_new_tokens)
        rows.append(_butterfly_row(method, a, b, bench, got))
        answers += [{"method": method, "a": a, "b": b, **r} for r in got]
    return pd.DataFrame(rows), answers


def butterfly_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The butterfly effect per method (in the rows' order): the mean over pairs of each rate,
    and the number of ``pairs``."""
    cols = ["a_named_in_group", "b_named_in_group", "b_named_alone"]
    g = rows.groupby("method", sort=False)
    return g[cols].mean().join(g.size().rename("pairs")).reset_index()


def case_generations(profile: str, spec_of: Any, methods: Sequence[str], train_cfg: TrainConfig,
                     eval_cfg: Any, n_images: int = 3) -> pd.DataFrame:
    """Every method's answers on the same generality images and prompts, read back from the
    runs the chain wrote (:func:`siu_lib.runs.load_run`): ``spec_of(method)`` gives each
    method's :class:`~siu_lib.runs.RunSpec`; the first ``n_images`` generality images of the
    run's open prompts. One row per (image, question) with a column per method."""
    table: dict[tuple[str, str], dict[str, str]] = {}
    for method in methods:
        spec: RunSpec = spec_of(method)
        run = load_run(profile, spec, train_cfg, eval_cfg)
        shown = [g for g in run["evaluation"]["generations"]
                 if g["group"] == "generality" and g.get("kind") == "open"][:n_images]
        for g in shown:
            table.setdefault((g["image"], g["question"]), {})[method] = g["answer"]
    return pd.DataFrame([{"image": img, "question": q, **answers} for (img, q), answers in table.items()])


__all__ = ["WHO_QUESTION", "butterfly_counts", "butterfly_runs", "butterfly_table", "case_generations",
           "group_pairs"]
