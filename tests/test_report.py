"""Tables as Markdown in the paper's layout (``figures/tables.md``) and the README's claims block."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from siu_lib.errors import ConfigError
from siu_lib.paths import REPO_ROOT, results_dir
from siu_lib.report import (README_BEGIN, README_END, cell, claims_markdown, method_rows, protocol,
                            readme_claims, tables_markdown, update_readme, write_tables_markdown)

FIXTURE = Path(__file__).parent / "fixtures" / "results"


def _table1() -> pd.DataFrame:
    return pd.DataFrame([
        {"model": "tiny", "method": "siu", "generality_em": 61.25, "generality_em_std": 3.5, "diversity": 96.0,
         "diversity_std": 1.0, "specificity_ratio": 0.9512, "specificity_ratio_std": 0.01},
        {"model": "tiny", "method": "ga_kl", "generality_em": 50.0, "generality_em_std": 0.0, "diversity": 80.0,
         "diversity_std": float("nan"), "specificity_ratio": float("nan"), "specificity_ratio_std": 0.0},
        {"model": "tiny", "method": "original", "generality_em": 0.0, "generality_em_std": 0.0, "diversity": 100.0,
         "diversity_std": 0.0, "specificity_ratio": 1.0, "specificity_ratio_std": 0.0},
    ])


def test_cells_by_hand():
    row = _table1().iloc[0]
    assert cell(row, "generality_em") == "61.2 ± 3.5"  # percentages: one digit
    assert cell(row, "specificity_ratio") == "0.951 ± 0.010"  # ratios: three
    assert cell(row, "fluency") == "–"  # a column the table lacks
    nan_row = _table1().iloc[1]
    assert cell(nan_row, "specificity_ratio") == "–" and cell(nan_row, "diversity") == "80.0"
    frontier = pd.Series({"lr": 0.002, "qualifies": np.bool_(True), "pairs": 6.0})
    assert (cell(frontier, "lr"), cell(frontier, "qualifies"), cell(frontier, "pairs")) == ("2.0e-03", "yes", "6")


def test_method_rows_follow_the_paper_order_with_the_paper_row_beside_siu():
    text = method_rows(_table1(), (("generality_em", "EM"), ("diversity", "Diversity")), "table1")
    lines = text.splitlines()
    assert lines[0] == "| model | method | EM | Diversity |"
    assert [line.split(" | ")[1] for line in lines[2:]] == ["original", "GA+KL", "SIU", "SIU (paper)"]
    assert lines[-1] == "| paper | SIU (paper) | > 99 | ≈ 97 |"  # spec 05's numbers, nothing invented
    two = method_rows(pd.concat([_table1(), _table1().assign(model="small")]), (("generality_em", "EM"),), "table1")
    assert two.count("(paper)") == 1  # once, not under each model size
    # a table the paper gives no number for has no paper row
    assert "(paper)" not in method_rows(_table1(), (("generality_em", "EM"),), "table2")


def test_protocol_is_read_from_the_runs():
    runs = pd.DataFrame({"model": ["tiny"] * 4 + ["small"] * 4, "method": "siu",
                         "concept": ["c00", "c00", "c01", "c01"] * 2, "seed": [0, 1] * 4})
    assert protocol(runs) == "tiny and small, 2 concepts × 2 seeds"
    assert protocol(runs[runs.seed == 0].assign(model="tiny")) == "tiny, 2 concepts × 1 seed (seed 0)"
    assert protocol(None) == "" and protocol(runs, "ga") == ""


def test_tables_markdown_from_the_fixture_names_what_is_missing(tmp_path):
    shutil.copy(FIXTURE / "table4.csv", tmp_path / "table4.csv")
    text = tables_markdown(tmp_path, "smoke")
    assert text.count("*Not produced: run the chain.*") == 7  # every table but Table 4
    t4 = text.split("## Table 4")[1].split("## ")[0]
    assert "| model | method | MIA ROUGE-L ↓ | Multilingual ↓ | Multi-hop ↓ |" in t4
    assert "| tiny | never seen |" in t4 and "nan" not in text.lower()


def test_write_tables_markdown_and_the_readme_block(tmp_path):
    path = write_tables_markdown(FIXTURE, tmp_path / "tables.md", "smoke")
    assert path.read_text().startswith("# Tables of the `smoke` profile")
    claims = pd.DataFrame([{"id": "T1-em", "claim": "SIU's EM | beats", "paper": "SIU EM > 99%",
                            "ours": "61.2", "verdict": "partly"}])
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{README_BEGIN}\nold text\n{README_END}\n\nafter\n")
    assert update_readme(readme, claims)
    assert not update_readme(readme, claims)  # the same claims: the file is left as it is
    text = readme.read_text()
    assert "old text" not in text and text.endswith(f"{README_END}\n\nafter\n")
    assert readme_claims(readme) == claims_markdown(claims)
    assert "SIU's EM \\| beats" in text and "**partly**" in text
    readme.write_text("# no markers\n")
    with pytest.raises(ConfigError, match="claims markers"):
        update_readme(readme, claims)


def test_the_readme_shows_the_committed_claims():
    """The README's claims block is the chain's rendering of the committed ``claims.csv``, not a
    hand copy."""
    claims = pd.read_csv(results_dir("default") / "claims.csv", keep_default_na=False)
    assert readme_claims(REPO_ROOT / "README.md") == claims_markdown(claims)


def test_no_results_table_has_an_empty_cell():
    """Every results CSV (the chain's tables, the benchmarks', the fixture) gives each cell a
    value: a quantity that does not apply to a row is written as what it is (no training is
    0 seconds, a method without a fake name names it in 0% of its answers), never left out."""
    patterns = ("data/results/*/*.csv", "data/bench/*.csv", "tests/fixtures/results/*.csv")
    files = sorted(p for pattern in patterns for p in REPO_ROOT.glob(pattern))
    assert any(p.parent == FIXTURE for p in files)
    for path in files:
        table = pd.read_csv(path)
        empty = table.columns[table.isna().any()].tolist()
        assert not empty, f"{path.relative_to(REPO_ROOT)}: empty cells in {empty}"
