"""Every table as Markdown, in the paper's layout, with the paper's known numbers beside ours.

:func:`tables_markdown` reads a profile's saved results (the CSVs notebooks 03-10 write) and
renders Tables 1, 2, 3, 4 and 7, the butterfly effect, each method's best frontier point and the
paper's claims as one Markdown document (``figures/tables.md`` for the default profile).
Rows follow the paper's method order and names (:data:`siu_lib.plots.METHOD_ORDER`,
:data:`siu_lib.plots.METHOD_LABELS`); columns the paper's metric order. The paper's numbers are
only those ``../shared/spec/05-paper-claims.md`` gives (:data:`PAPER_NUMBERS`): a cell of the
paper's row without one shows "–", never a guess. :func:`update_readme` writes the claims table
into the README between two markers, so the README shows the chain's verdicts, not a hand copy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ConfigError
from .plots import method_label, sort_methods
from .results import atomic_write_text

#: the paper's numbers for table cells, as spec 05 gives them: (table, method, column) -> text
PAPER_NUMBERS = {
    ("table1", "siu", "generality_em"): "> 99",
    ("table1", "siu", "diversity"): "≈ 97",
    ("table3", "siu", "specificity"): "24.9",
}

#: Table 1's columns in the paper's order, then ours beyond it
TABLE1_COLUMNS = (("efficacy", "Efficacy ↑"), ("generality_em", "EM ↑"), ("generality_geval", "G-Eval ↓"),
                  ("generality_cdis", "C-Dis ↑"), ("specificity", "Specificity ↑"),
                  ("specificity_ratio", "Spec. / original ↑"), ("fluency", "Fluency (ppl) ↓"),
                  ("diversity", "Diversity ↑"), ("factual_retention", "Own facts ↑"))
#: Table 7's columns: the specificity tasks
TABLE7_COLUMNS = (("spec_recognition", "Others' recognition ↑"), ("spec_yesno", "Others' yes/no ↑"),
                  ("spec_general_vqa", "General VQA ↑"), ("spec_facts", "Text facts ↑"))
#: Table 4's columns: the paper's attacks, then ours beyond it
TABLE4_COLUMNS = (("mia_rouge", "MIA ROUGE-L ↓"), ("multilingual_leak", "Multilingual ↓"),
                  ("multihop_asr", "Multi-hop ↓"), ("mia_auc_loss", "AUC LOSS ↓"), ("mia_auc_zlib", "AUC zlib ↓"),
                  ("mia_auc_min_k", "AUC Min-K% ↓"), ("mia_auc_min_k_pp", "AUC Min-K%++ ↓"),
                  ("paraphrase_leak", "Paraphrase ↓"), ("leak_none", "Leak ↓"), ("leak_crop", "Crop ↓"),
                  ("leak_grayscale", "Grayscale ↓"), ("leak_noise", "Noise ↓"), ("leak_flip", "Flip ↓"),
                  ("leak_resize", "Resize ↓"), ("leak_group", "Group ↓"))
#: the butterfly table's columns
BUTTERFLY_COLUMNS = (("a_named_in_group", "A named in the group photo"),
                     ("b_named_in_group", "B named in the group photo"),
                     ("b_named_alone", "B named alone"), ("pairs", "pairs"))
#: the frontier table's columns
FRONTIER_COLUMNS = (("lr", "lr"), ("generality_em", "EM ↑"), ("recognition_ratio", "others' recognition / original"),
                    ("qualifies", "ratio ≥ 0.95 reached"))
#: digits per column kind: ratios and AUCs 3, perplexities 2, the rest (percentages) 1
_DIGITS = {"specificity_ratio": 3, "recognition_ratio": 3, "mia_rouge": 3, "fluency": 2, "generality_geval": 2,
           "generality_cdis": 2}


#: counts, written without decimals
_COUNTS = {"pairs", "runs", "mia_kept", "mia_counted", "concepts", "steps", "records"}


def _digits(column: str) -> int:
    if column in _COUNTS:
        return 0
    return 3 if column.startswith("mia_auc") else _DIGITS.get(column, 1)


def _number(value: object, digits: int, column: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return "–"
    if column == "lr":  # learning rates span decades
        return f"{x:.1e}"
    return f"{x:.{digits}f}"


def cell(row: pd.Series, column: str) -> str:
    """One table cell: the mean, with ``± std`` where the row has a ``<column>_std`` (a pooled
    run count of one shows no spread), at the column's digits; "–" for a missing value."""
    if column not in row.index:
        return "–"
    d = _digits(column)
    text = _number(row[column], d, column)
    std = row.get(f"{column}_std")
    if std is not None and text != "–" and not (isinstance(std, float) and math.isnan(std)):
        text += f" ± {_number(std, d, column)}"
    return text


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A pipe table; ``|`` inside a cell is escaped."""
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"
    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])


def method_rows(table: pd.DataFrame, columns: Sequence[tuple[str, str]], name: str,
                by_model: bool = True) -> str:
    """A results table as Markdown: one row per (model,) method in the figures' method order,
    then, once, a row for each method the paper gives a number for in table ``name``
    (:data:`PAPER_NUMBERS`; its model column "paper", "–" where the paper gives none: the paper
    reports those numbers without saying for which of its model sizes)."""
    header = (["model"] if by_model else []) + ["method"] + [label for _, label in columns]
    out, papers = [], {}
    groups = table.groupby("model", sort=False) if by_model else [(None, table)]
    for model, part in groups:
        part = part.set_index("method")
        for method in sort_methods(part.index):
            row = part.loc[method]
            out.append(([model] if by_model else []) + [method_label(method)] + [cell(row, c) for c, _ in columns])
            paper = [PAPER_NUMBERS.get((name, method, c), "–") for c, _ in columns]
            if any(p != "–" for p in paper):
                papers[method] = paper
    for method, paper in papers.items():
        out.append((["paper"] if by_model else []) + [f"{method_label(method)} (paper)"] + paper)
    return markdown_table(header, out)


def claims_markdown(claims: pd.DataFrame) -> str:
    """The claims table (``claims.csv``) as Markdown: id, the claim, the paper's number, ours,
    and the verdict in bold."""
    rows = [[r.id, r.claim, r.paper, r.ours, f"**{r.verdict}**"] for r in claims.itertuples()]
    return markdown_table(["id", "the paper's claim", "paper", "ours", "verdict"], rows)


def _read(results: Path, name: str) -> pd.DataFrame | None:
    path = results / name
    return pd.read_csv(path) if path.is_file() else None


def protocol(runs: pd.DataFrame | None, method: str = "siu") -> str:
    """The protocol of a runs file, read from its rows of ``method``: the model sizes, how many
    concepts and seeds, e.g. ``"tiny and small, 5 concepts × 3 seeds"``; "" without runs."""
    if runs is None or "method" not in runs.columns or not (runs["method"] == method).any():
        return ""
    mine = runs[runs["method"] == method]
    sizes = " and ".join(dict.fromkeys(mine["model"])) if "model" in mine.columns else "tiny"
    n_concepts, n_seeds = mine["concept"].nunique(), mine["seed"].nunique()
    return (f"{sizes}, {n_concepts} concept{'s' * (n_concepts != 1)} × {n_seeds} seed{'s' * (n_seeds != 1)}"
            + (" (seed 0)" if n_seeds == 1 else ""))


#: the result files :func:`tables_markdown` reads (a notebook that calls it declares them)
TABLES_MARKDOWN_READS = ("table1.csv", "table1_runs.csv", "table2.csv", "table2_runs.csv", "table3.csv",
                         "table4.csv", "table4_runs.csv", "table7.csv", "butterfly.csv", "frontier_best.csv",
                         "frontier_runs.csv", "claims.csv")


def _embedded(profile: str) -> bool:
    """Whether ``profile`` (a name, perhaps with overrides) is an embedded profile."""
    from .profiles import PROFILES

    return profile.split("+", 1)[0].removesuffix("-native") in PROFILES


def tables_markdown(results: str | Path, profile: str = "default") -> str:
    """Every table of the profile's ``results`` folder as one Markdown document, in the paper's
    layout, each with its caption and protocol; a table whose CSV is missing is named as not
    produced."""
    results = Path(results)
    parts = [f"# Tables of the `{profile}` profile\n",
             "Written by notebook 10 from the CSVs of `data/results/" + profile + "/` (do not edit: "
             "`make reproduce` rewrites it). Mean ± std over runs; the `(paper)` rows hold the paper's only "
             "known numbers (`05-paper-claims.md`), \"–\" where the paper gives none."
             + (" The embedded `tiny` and `small` models stand in for LLaVA-1.5-7B and -13B."
                if _embedded(profile) else "") + "\n"]

    def section(title: str, caption: str, body: str | None) -> None:
        parts.append(f"## {title}\n\n{caption}\n\n{body if body is not None else '*Not produced: run the chain.*'}\n")

    t1 = _read(results, "table1.csv")
    section("Table 1: every method at 6 steps",
            f"{protocol(_read(results, 'table1_runs.csv'))}: mean ± std over each method's runs (the std "
            "over concepts is in `table1.csv`). Efficacy, EM, specificity, diversity and own facts in %.",
            None if t1 is None else method_rows(t1, TABLE1_COLUMNS, "table1"))
    t2 = _read(results, "table2.csv")
    section("Table 2: SIU's ablations",
            f"{protocol(_read(results, 'table2_runs.csv'))}: DMK without its token mask, without its "
            "vocabulary mask, plain KL, and each of the four fine-tuning targets removed.",
            None if t2 is None else method_rows(t2, TABLE1_COLUMNS, "table2"))
    t3 = _read(results, "table3.csv")
    if t3 is not None:
        k, steps = int(t3["concepts"].max()), int(t3["steps"].max())
    section("Table 3: every concept unlearned at once",
            (f"`{t3['model'].iloc[0]}`" if t3 is not None else "One model") + ", seed 0" + (f", {k} concepts merged into one run of {steps} steps" if t3 is not None else "")
            + ". With every concept forgotten, no other concept is left to recognise: specificity is the "
            "general visual QA and the concepts' text facts. The paper: SIU's specificity falls to 24.9%.",
            None if t3 is None else method_rows(t3, (*TABLE1_COLUMNS, *TABLE7_COLUMNS[2:]),
                                                "table3", by_model=False))
    t4 = _read(results, "table4.csv")
    section("Table 4: membership inference and jailbreaks",
            f"{protocol(_read(results, 'table4_runs.csv'))}, mean ± std over runs; lower is better everywhere. "
            "The first three columns are the paper's; the AUCs (standard MIA form), paraphrases and "
            "visual perturbations go beyond it. `never seen`: pre-trained without the concepts' pictures.",
            None if t4 is None else method_rows(t4, TABLE4_COLUMNS, "table4"))
    t7 = _read(results, "table7.csv")
    section("Table 7: specificity per task", "Table 1's runs; each task in %.",
            None if t7 is None else method_rows(t7, TABLE7_COLUMNS, "table7"))
    bf = _read(results, "butterfly.csv")
    section("The butterfly effect",
            "`tiny`, seed 0: A unlearned; % of answers naming each person, mean over every group-photo pair.",
            None if bf is None else method_rows(bf.assign(model="tiny"), BUTTERFLY_COLUMNS, "butterfly",
                                                by_model=False))
    fb = _read(results, "frontier_best.csv")
    section("Each method's best EM at others' recognition ≥ 0.95 (beyond the paper)",
            f"{protocol(_read(results, 'frontier_runs.csv'))}, three learning rates per method (notebook 09).",
            None if fb is None else method_rows(fb.assign(model="tiny"), FRONTIER_COLUMNS, "frontier",
                                                by_model=False))
    claims = _read(results, "claims.csv")
    section("The paper's claims", "One row per claim of `05-paper-claims.md` (`claims.csv`).",
            None if claims is None else claims_markdown(claims))
    return "\n".join(parts)


def write_tables_markdown(results: str | Path, path: str | Path, profile: str = "default") -> Path:
    """Write :func:`tables_markdown` to ``path`` (temporary file, then rename)."""
    path = Path(path)
    atomic_write_text(path, tables_markdown(results, profile))
    return path


#: the README markers between which :func:`update_readme` writes the claims table
README_BEGIN = "<!-- claims:begin (written by notebook 10; do not edit) -->"
README_END = "<!-- claims:end -->"


def _claims_span(readme: Path) -> tuple[str, int, int]:
    """``readme``'s text and where its claims block starts (after :data:`README_BEGIN`) and
    ends (at :data:`README_END`); :class:`~siu_lib.errors.ConfigError` when the markers are
    missing or out of order."""
    text = readme.read_text()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        raise ConfigError(f"{readme.name} lacks the claims markers {README_BEGIN!r} ... {README_END!r}")
    return text, begin + len(README_BEGIN), end


def update_readme(readme: str | Path, claims: pd.DataFrame) -> bool:
    """Replace what lies between :data:`README_BEGIN` and :data:`README_END` in ``readme`` with
    :func:`claims_markdown` of ``claims`` (temporary file, then rename). Returns whether the file
    changed; :class:`~siu_lib.errors.ConfigError` when the markers are missing or out of order."""
    readme = Path(readme)
    text, begin, end = _claims_span(readme)
    new = text[:begin] + "\n" + claims_markdown(claims) + "\n" + text[end:]
    if new != text:
        atomic_write_text(readme, new)
    return new != text


def readme_claims(readme: str | Path) -> str:
    """The claims block of ``readme`` (what lies between the markers, stripped)."""
    text, begin, end = _claims_span(Path(readme))
    return text[begin:end].strip()


__all__ = ["PAPER_NUMBERS", "README_BEGIN", "README_END", "TABLES_MARKDOWN_READS", "cell", "claims_markdown", "markdown_table",
           "method_rows", "readme_claims", "tables_markdown", "update_readme", "write_tables_markdown"]
