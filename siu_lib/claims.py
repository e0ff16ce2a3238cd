"""The paper's claims against our saved results: ``claims.csv``.

One row per claim of ``../shared/spec/05-paper-claims.md``: its id, the claim in the paper's
words, the paper's number where that file gives one (most claims are words only, and no
number is invented), ours, and a verdict. Each claim is checked as a set of comparisons
(SIU against each baseline on each model size, each ablation against SIU, ...); the verdict
is ``agree`` when every comparison goes the paper's way, ``disagree`` when none does,
``partly`` in between, and ``not measured`` when a result file it needs is missing.
:func:`paper_claims` reads the results folder; each ``check_*`` function takes the tables
themselves, so the verdicts are tested on crafted tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .tables import TABLE1_METHODS

#: the verdicts, from the paper's side to ours
VERDICTS = ("agree", "partly", "disagree", "not measured")
#: the baselines SIU is compared with
BASELINES = tuple(m for m in TABLE1_METHODS if m != "siu")

#: (id, the claim in the paper's terms, the paper's number or "qualitative") for each claim of spec 05
CLAIMS = (
    ("T1-em", "SIU's generality EM beats every baseline (PO, GA, GA+KL) at 6 steps, on both model sizes",
     "SIU EM > 99%"),
    ("T1-util", "SIU keeps specificity, fluency and diversity better than the baselines", "SIU diversity ≈ 97%"),
    ("T1-all", "SIU completely surpasses the baselines on (nearly) all metrics", "qualitative"),
    ("T1-scale", "SIU is robust to model scale; the larger model drops least", "qualitative"),
    ("T2", "both masks of DMK contribute (removing either hurts)", "qualitative"),
    ("F23", "as steps grow, GA and GA+KL lose fluency and diversity; SIU stays stable", "qualitative"),
    ("F4", "on further concepts, SIU has the highest EM", "qualitative"),
    ("T3", "with all concepts unlearned at once, SIU stays better than the baselines, but its specificity drops",
     "SIU specificity 24.9%"),
    ("T4-mia", "SIU's outputs are least similar to the original model's (MIA ROUGE-L lowest)", "qualitative"),
    ("T4-jb", "SIU resists multilingual and multi-hop jailbreaks", "qualitative"),
    ("BF", "after unlearning A, a partner B in a group photo with A is also misnamed, while B alone is still named",
     "qualitative"),
)

#: Table 1's metrics and whether higher is better, for :func:`check_t1_all`
_DIRECTIONS = {"efficacy": True, "generality_em": True, "generality_geval": False, "generality_cdis": True,
               "specificity": True, "fluency": False, "diversity": True, "factual_retention": True}


def verdict(wins: Sequence[bool]) -> str:
    """``agree`` when every comparison goes the paper's way, ``disagree`` when none does,
    ``partly`` otherwise; ``not measured`` without a comparison."""
    if not len(wins):
        return "not measured"
    n = sum(bool(w) for w in wins)
    return "agree" if n == len(wins) else "disagree" if n == 0 else "partly"


def _better(a: float, b: float, higher: bool) -> bool:
    return a >= b if higher else a <= b


def _methods(table: pd.DataFrame, model: str) -> pd.DataFrame:
    return table[table["model"] == model].set_index("method")


def _vs_baselines(table: pd.DataFrame, metric: str, higher: bool) -> tuple[list[bool], dict[str, float]]:
    wins, ours = [], {}
    for model in dict.fromkeys(table["model"]):
        t = _methods(table, model)
        if "siu" not in t.index:
            continue
        ours[model] = float(t.loc["siu", metric])
        wins += [_better(t.loc["siu", metric], t.loc[b, metric], higher) for b in BASELINES if b in t.index]
    return wins, ours


def _fmt(values: dict[str, float], unit: str = "") -> str:
    return "; ".join(f"{k} {v:.1f}{unit}" if v == v else f"{k} –" for k, v in values.items())  # v != v: NaN


def check_t1_em(table1: pd.DataFrame) -> tuple[str, str]:
    """SIU's generality EM ≥ each baseline's on each model size."""
    wins, ours = _vs_baselines(table1, "generality_em", True)
    return f"SIU generality EM {_fmt(ours, '%')}; ≥ the baseline in {sum(wins)} of {len(wins)}", verdict(wins)


def check_t1_util(table1: pd.DataFrame) -> tuple[str, str]:
    """SIU's specificity, fluency (perplexity, lower) and diversity against each baseline."""
    wins, parts = [], []
    for metric, higher in (("specificity", True), ("fluency", False), ("diversity", True)):
        w, ours = _vs_baselines(table1, metric, higher)
        wins += w
        parts.append(f"{metric} {_fmt(ours)}")
    return f"SIU {'; '.join(parts)}; at least as good in {sum(wins)} of {len(wins)}", verdict(wins)


def check_t1_all(table1: pd.DataFrame) -> tuple[str, str]:
    """On how many of Table 1's metrics SIU is the best method, per size: agree when it is best
    on all but at most one, disagree when on at most half, partly otherwise."""
    counts = {}
    for model in dict.fromkeys(table1["model"]):
        t = _methods(table1, model)
        t = t.loc[[m for m in TABLE1_METHODS if m in t.index]]
        metrics = [m for m in _DIRECTIONS if m in t.columns]
        best = sum(_better(t.loc["siu", m], t[m].max() if _DIRECTIONS[m] else t[m].min(), _DIRECTIONS[m])
                   for m in metrics)
        counts[model] = (best, len(metrics))
    if not counts:
        return "no model in Table 1", "not measured"
    text = "; ".join(f"{k} best on {b} of {n}" for k, (b, n) in counts.items())
    if all(b >= n - 1 for b, n in counts.values()):
        return text, "agree"
    return text, "disagree" if all(b <= n / 2 for b, n in counts.values()) else "partly"


def check_t1_scale(table1: pd.DataFrame) -> tuple[str, str]:
    """SIU's specificity drop from the original (points), the larger model against the
    smaller (``tiny`` is the smaller where it is there, else the first model of the table)."""
    models = list(dict.fromkeys(table1["model"]))
    if len(models) < 2:
        return f"one model size only ({', '.join(models)})", "not measured"
    drops = {}
    for model in models:
        t = _methods(table1, model)
        drops[model] = float(t.loc["original", "specificity"] - t.loc["siu", "specificity"])
    small, large = sorted(models, key=lambda m: 0 if m == "tiny" else 1)[:2]
    return (f"SIU's specificity drop {_fmt(drops, ' points')}",
            verdict([drops[large] <= drops[small]]))


def check_t2(table2: pd.DataFrame) -> tuple[str, str]:
    """Each DMK ablation (no token mask, no vocabulary mask) below SIU on generality EM or
    specificity."""
    t = table2.set_index("method")
    wins, parts = [], []
    for ablation in ("siu_no_token_mask", "siu_no_vocab_mask"):
        if ablation not in t.index:
            continue
        hurt = (t.loc[ablation, "generality_em"] < t.loc["siu", "generality_em"]
                or t.loc[ablation, "specificity"] < t.loc["siu", "specificity"])
        wins.append(bool(hurt))
        parts.append(f"{ablation}: EM {t.loc[ablation, 'generality_em']:.1f}, specificity "
                     f"{t.loc[ablation, 'specificity']:.1f}")
    return (f"SIU EM {t.loc['siu', 'generality_em']:.1f}, specificity {t.loc['siu', 'specificity']:.1f}; "
            + "; ".join(parts)), verdict(wins)


def check_f23(steps: pd.DataFrame, stable_points: float = 5.0) -> tuple[str, str]:
    """From the fewest to the most steps: GA's and GA+KL's perplexity rises and diversity falls;
    SIU's diversity moves by at most ``stable_points`` and its perplexity does not double."""
    s = steps[steps["method"] != "original"].groupby(["method", "steps"]).mean(numeric_only=True)
    wins, parts = [], []
    for m in ("ga", "ga_kl"):
        first, last = s.loc[m].iloc[0], s.loc[m].iloc[-1]
        wins += [bool(last["fluency"] > first["fluency"]), bool(last["diversity"] < first["diversity"])]
        parts.append(f"{m} perplexity {first['fluency']:.1f}→{last['fluency']:.1f}, diversity "
                     f"{first['diversity']:.1f}→{last['diversity']:.1f}")
    first, last = s.loc["siu"].iloc[0], s.loc["siu"].iloc[-1]
    wins += [bool(abs(last["diversity"] - first["diversity"]) <= stable_points),
             bool(last["fluency"] <= 2 * first["fluency"])]
    parts.append(f"siu perplexity {first['fluency']:.1f}→{last['fluency']:.1f}, diversity "
                 f"{first['diversity']:.1f}→{last['diversity']:.1f}")
    return "; ".join(parts), verdict(wins)


def check_f4(fig4_runs: pd.DataFrame) -> tuple[str, str]:
    """SIU's mean EM over seeds ≥ every other method's, concept by concept."""
    f4 = fig4_runs[fig4_runs["method"] != "original"].pivot_table(
        index="concept", columns="method", values="generality_em", sort=False)
    others = [m for m in f4.columns if m != "siu"]
    wins = [bool(f4.loc[c, "siu"] >= f4.loc[c, others].max()) for c in f4.index]
    return f"SIU highest on {sum(wins)} of {len(wins)} concepts", verdict(wins)


def check_t3(table3: pd.DataFrame, single_ratio: float | None = None) -> tuple[str, str]:
    """With every concept unlearned at once: SIU ≥ each baseline on generality EM and on
    specificity (ties count for SIU), and (given SIU's single-concept specificity ratio) its
    specificity ratio lower than that. The drop is read from the ratio to the original model on
    the same items, as the specificity items differ between one concept forgotten (the others'
    recognition among them) and all of them (general visual QA and text facts only)."""
    t = table3.set_index("method")
    wins = [bool(t.loc["siu", m] >= t.loc[b, m]) for m in ("generality_em", "specificity")
            for b in BASELINES if b in t.index]
    text = (f"SIU specificity {t.loc['siu', 'specificity']:.1f}% (ratio to the original "
            f"{t.loc['siu', 'specificity_ratio']:.3f}), generality EM {t.loc['siu', 'generality_em']:.1f}%")
    if single_ratio is not None:
        wins.append(bool(t.loc["siu", "specificity_ratio"] < single_ratio))
        text += f"; one concept: ratio {single_ratio:.3f}"
    return text, verdict(wins)


def check_t4_mia(table4: pd.DataFrame) -> tuple[str, str]:
    """SIU's MIA ROUGE-L below each baseline's on each model size."""
    wins, ours = [], {}
    for model in dict.fromkeys(table4["model"]):
        t = _methods(table4, model)
        ours[model] = float(t.loc["siu", "mia_rouge"])
        wins += [bool(t.loc["siu", "mia_rouge"] < t.loc[b, "mia_rouge"]) for b in BASELINES if b in t.index]
    return f"SIU MIA ROUGE-L {'; '.join(f'{k} {v:.3f}' for k, v in ours.items())}", verdict(wins)


def check_t4_jb(table4: pd.DataFrame) -> tuple[str, str]:
    """SIU's multilingual leak and multi-hop success at or below each baseline's, per size."""
    wins, parts = [], []
    for metric in ("multilingual_leak", "multihop_asr"):
        w, ours = _vs_baselines(table4, metric, False)
        wins += w
        parts.append(f"{metric} {_fmt(ours, '%')}")
    return f"SIU {'; '.join(parts)}; at or below the baseline in {sum(wins)} of {len(wins)}", verdict(wins)


def check_bf(butterfly: pd.DataFrame, alone_points: float = 10.0) -> tuple[str, str]:
    """For SIU: B named less often in the group photo than by the original, and B alone named
    within ``alone_points`` of the original."""
    t = butterfly.set_index("method")
    o, s = t.loc["original"], t.loc["siu"]
    wins = [bool(s["b_named_in_group"] < o["b_named_in_group"]),
            bool(abs(s["b_named_alone"] - o["b_named_alone"]) <= alone_points)]
    return (f"B named in the group photo {o['b_named_in_group']:.1f}% → {s['b_named_in_group']:.1f}%, "
            f"alone {o['b_named_alone']:.1f}% → {s['b_named_alone']:.1f}%"), verdict(wins)


def _single_concept_ratio(multi: pd.DataFrame) -> float | None:
    """SIU's specificity ratio with the fewest concepts unlearned at once."""
    rows = multi[(multi["method"] == "siu") & (multi["mode"] == "at_once")]
    return None if rows.empty else float(rows.sort_values("concepts").iloc[0]["specificity_ratio"])


#: each claim's check and the result files it reads (``data/results/<profile>/``)
CHECKS: dict[str, tuple[tuple[str, ...], Callable[..., tuple[str, str]]]] = {
    "T1-em": (("table1.csv",), check_t1_em),
    "T1-util": (("table1.csv",), check_t1_util),
    "T1-all": (("table1.csv",), check_t1_all),
    "T1-scale": (("table1.csv",), check_t1_scale),
    "T2": (("table2.csv",), check_t2),
    "F23": (("steps.csv",), check_f23),
    "F4": (("fig4_runs.csv",), check_f4),
    "T3": (("table3.csv", "multi_concept_runs.csv"),
           lambda t3, multi: check_t3(t3, _single_concept_ratio(multi))),
    "T4-mia": (("table4.csv",), check_t4_mia),
    "T4-jb": (("table4.csv",), check_t4_jb),
    "BF": (("butterfly.csv",), check_bf),
}


#: every result file a claim reads (:data:`CHECKS`)
CLAIM_TABLES = tuple(sorted({f for files, _ in CHECKS.values() for f in files}))


def claims_table(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """``claims.csv``: one row per claim of :data:`CLAIMS` (``id``, ``claim``, ``paper``: the
    paper's number or "qualitative", ``ours``, ``verdict``) from the result tables by file name
    (:data:`CHECKS` says which each claim reads); a claim whose tables are missing is
    ``not measured``, with ``ours`` naming them."""
    rows: list[dict[str, Any]] = []
    for claim_id, claim, paper in CLAIMS:
        files, check = CHECKS[claim_id]
        missing = [f for f in files if f not in tables]
        if missing:
            ours, result = f"no {', '.join(missing)}", "not measured"
        else:
            ours, result = check(*(tables[f] for f in files))
        rows.append({"id": claim_id, "claim": claim, "paper": paper, "ours": ours, "verdict": result})
    return pd.DataFrame(rows)


def paper_claims(results: str | Path) -> pd.DataFrame:
    """:func:`claims_table` of the result files found in the folder ``results``."""
    results = Path(results)
    return claims_table({f: pd.read_csv(results / f) for f in CLAIM_TABLES if (results / f).is_file()})


__all__ = ["BASELINES", "CHECKS", "CLAIM_TABLES", "CLAIMS", "VERDICTS", "claims_table", "paper_claims", "verdict"]
