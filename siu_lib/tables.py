"""The paper's tables from per-run rows: Table 1's runs and method order, mean ± std over seeds
and concepts, and their printed form.

Notebook 04 runs :func:`table1_jobs` (every method × model size × concept × seed) and writes one
row per run; notebook 05 orders the rows (:func:`order_methods`), aggregates them
(:func:`mean_std_table`: Table 1 over :data:`siu_lib.metrics.TABLE1_METRICS`, Table 7 over
the ``spec_*`` columns) and prints them as ``mean ± std`` (:func:`plus_minus`). Notebook 06
attacks every method's models (:func:`siu_lib.runs.attack_one`) and aggregates them into
Table 4 (:func:`table4`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from .errors import UnknownNameError

#: the methods of Table 1, in the paper's order: the baselines, then SIU
TABLE1_METHODS = ("po", "ga", "ga_kl", "npo", "gd", "siu")
#: the order of Table 1's rows: the original model first
METHOD_ORDER = ("original", *TABLE1_METHODS)
#: Table 2's rows: SIU, the DMK ablation (no token mask, no vocabulary mask, plain KL) and the
#: four-target ablation (each target removed), registered methods of :mod:`siu_lib.methods`
TABLE2_METHODS = ("siu", "siu_no_token_mask", "siu_no_vocab_mask", "siu_plain_kl",
                  "siu_no_a", "siu_no_b", "siu_no_c", "siu_no_d")
#: Fig 4's bars, in the paper's order
FIG4_METHODS = ("siu", "ga_kl", "po", "ga")
#: the order of Table 4's rows: Table 1's, then the reference pre-trained without the
#: concepts' pictures (what a model that truly forgot should score)
TABLE4_ORDER = (*METHOD_ORDER, "never_seen")
#: Table 4's count columns besides the attacks: the paper protocol's kept and counted pairs
TABLE4_COUNTS = ("mia_kept", "mia_counted")


def table1_jobs(sizes: Iterable[str], concepts: Iterable[str], seeds: Iterable[int],
                methods: Sequence[str] = TABLE1_METHODS) -> list[tuple[str, str, str, int]]:
    """Every ``(model size, concept, method, seed)`` run of Table 1, in run order (size, then
    concept, then method, then seed)."""
    concepts, seeds = list(concepts), list(seeds)
    return [(size, cid, m, seed) for size in sizes for cid in concepts for m in methods for seed in seeds]


def order_methods(rows: pd.DataFrame, order: Sequence[str] = METHOD_ORDER) -> pd.DataFrame:
    """``rows`` sorted by model, then method in ``order`` (the original model first);
    :class:`UnknownNameError` names a method that is not in ``order``."""
    unknown = sorted(set(rows["method"]) - set(order))
    if unknown:
        raise UnknownNameError(f"method(s) {unknown} have no place in the table order {list(order)}")
    rank = {m: k for k, m in enumerate(order)}
    return rows.sort_values(["model", "method"], key=lambda col: col.map(rank) if col.name == "method" else col,
                            kind="stable").reset_index(drop=True)


def mean_std_table(rows: pd.DataFrame, by: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Mean and std (over seeds and concepts) of each metric per group: columns ``<metric>``
    and ``<metric>_std``, groups in the order they first appear."""
    g = rows.groupby(list(by), sort=False)[list(metrics)]
    mean, std = g.mean(), g.std(ddof=0).add_suffix("_std")
    return pd.concat([mean, std], axis=1).reset_index()


def plus_minus(table: pd.DataFrame, metrics: Sequence[str], index: Sequence[str] = ("model", "method"),
               digits: int = 1) -> pd.DataFrame:
    """A :func:`mean_std_table` printed as ``"mean ± std"`` per metric, indexed by ``index``."""
    return pd.DataFrame({m: [f"{a:.{digits}f} ± {b:.{digits}f}" for a, b in zip(table[m], table[f"{m}_std"])]
                         for m in metrics}, index=pd.MultiIndex.from_frame(table[list(index)]))


def table4(rows: pd.DataFrame, attacks: Sequence[str]) -> pd.DataFrame:
    """Table 4 from :func:`siu_lib.runs.attack_one`'s rows: one row per model × method (in
    :data:`TABLE4_ORDER`), the mean of each attack in ``attacks`` and of
    :data:`TABLE4_COUNTS` over runs (concepts × seeds), their ``_std`` columns and the number
    of ``runs``. :class:`UnknownNameError` for an attack that no row has."""
    missing = [a for a in attacks if a not in rows.columns]
    if missing:
        raise UnknownNameError(f"attack column(s) {missing} are in no run row; have {sorted(rows.columns)}")
    ordered = order_methods(rows, TABLE4_ORDER)
    columns = [*attacks, *(c for c in TABLE4_COUNTS if c in ordered.columns)]
    table = mean_std_table(ordered, ["model", "method"], columns)
    runs = ordered.groupby(["model", "method"], sort=False).size().rename("runs").reset_index()
    return table.merge(runs, on=["model", "method"])


def verdict_text(claims: pd.DataFrame) -> str:
    """What a notebook prints under its table of the paper's claims (columns ``model``,
    ``claim``, ``holds here``): each claim our numbers disagree with, or that every one holds."""
    disagree = claims[~claims["holds here"].astype(bool)]
    if disagree.empty:
        return "Every claim checked above holds on the embedded models."
    lines = ["Where our numbers DISAGREE with the paper (reported as measured, nothing tuned to agree):"]
    return "\n".join(lines + [f"  - [{r.model}] {r.claim}" for r in disagree.itertuples()])


def concept_std(rows: pd.DataFrame, by: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """The spread between concepts: per group of ``by``, the std (ddof 0) over concepts of each
    concept's mean over seeds, as ``<metric>_concept_std`` columns (0 with one concept), groups
    in the order they first appear. Beside :func:`mean_std_table`'s std over every run, it says
    how much of the spread is the concept rather than the seed."""
    per_concept = rows.groupby([*by, "concept"], sort=False)[list(metrics)].mean()
    spread = per_concept.groupby(level=list(range(len(by))), sort=False).std(ddof=0)
    return spread.add_suffix("_concept_std").reset_index()
