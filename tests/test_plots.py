"""Every figure function renders from a small stored results fixture (``tests/fixtures/results``,
rows of the smoke profile's chain), in the one method palette, order and naming of every figure,
and is written as PNG and PDF with nothing half-written left behind."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.colors as mcolors
import pandas as pd
import pytest
from PIL import Image

from siu_lib import plots
from siu_lib.plots import METHOD_COLORS, METHOD_LABELS, METHOD_ORDER, method_color, method_label, save_figure

FIXTURE = Path(__file__).parent / "fixtures" / "results"


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(FIXTURE / name)


def _same_colour(a, b) -> bool:
    return mcolors.to_hex(a) == mcolors.to_hex(b)


def _legend(fig) -> list[str]:
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]
    return [t.get_text() for leg in legends for t in leg.get_texts()]


def test_every_method_has_one_colour_and_one_paper_name():
    assert set(METHOD_ORDER) == set(METHOD_COLORS) == set(METHOD_LABELS)
    assert len(set(METHOD_COLORS.values())) == len(METHOD_COLORS)  # no two methods share a hue
    assert method_label("ga_kl") == "GA+KL" and method_label("siu") == "SIU"
    assert plots.sort_methods(["siu", "unknown", "ga", "original"]) == ["original", "ga", "siu", "unknown"]


def test_step_curves_one_line_per_method_in_its_colour():
    steps = _read("steps.csv")
    fig = plots.plot_step_curves(steps, "tiny")
    methods = plots.sort_methods(steps["method"])
    assert _legend(fig) == [method_label(m) for m in methods]
    ax = fig.axes[0]
    colours = [line.get_color() for line in ax.get_lines() if len(line.get_xdata()) > 1]
    curves = [m for m in methods if steps[steps["method"] == m]["steps"].nunique() > 1]  # the original: one point
    assert [mcolors.to_hex(c) for c in colours] == [mcolors.to_hex(method_color(m)) for m in curves]


def test_roc_curves_per_model_in_the_palette():
    roc = _read("table4_roc.csv")
    fig = plots.plot_roc(roc, "min_k_pp")
    assert len(fig.axes) == roc["model"].nunique()
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert _same_colour(lines["never seen"].get_color(), METHOD_COLORS["never_seen"])
    assert _same_colour(lines["SIU"].get_color(), METHOD_COLORS["siu"])


def test_perturbation_bars_one_bar_per_method_and_attack():
    table = _read("table4.csv")
    columns = ["leak_none", "leak_crop", "leak_flip"]
    fig = plots.plot_perturbation_leaks(table, columns, ["none", "crop", "flip"])
    ax = fig.axes[0]
    n_methods = (table["model"] == table["model"].iloc[0]).sum()
    assert len(ax.patches) == n_methods * len(columns)
    assert _legend(fig)[0] == "original" and _legend(fig)[-1] == "never seen"


def test_fig4_bars_per_concept_and_method():
    runs = _read("fig4_runs.csv")
    methods = ("siu", "ga_kl", "po", "ga")
    fig = plots.plot_em_per_concept(runs[runs["method"].isin(methods)], methods)
    assert len(fig.axes[0].patches) == runs["concept"].nunique() * len(methods)
    assert _legend(fig) == ["SIU", "GA+KL", "PO", "GA"]
    assert _same_colour(fig.axes[0].patches[0].get_facecolor(), METHOD_COLORS["siu"])


def test_multi_concept_curve_solid_at_once_dashed_one_by_one():
    rows = _read("multi_concept_runs.csv")
    fig = plots.plot_multi_concept(rows)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert lines["SIU (at once)"].get_linestyle() == "-" and lines["SIU (one by one)"].get_linestyle() == "--"
    assert _same_colour(lines["SIU (one by one)"].get_color(), METHOD_COLORS["siu"])


def test_frontiers_and_tradeoff_render_from_saved_tables():
    fig = plots.plot_frontiers(_read("frontiers.csv"), ideal=(1.0, 100.0), min_ratio=0.95)
    labels = _legend(fig)
    assert labels[-1] == "never seen (ideal)" and "SIU" in labels
    sweep = _read("siu_sweep.csv")
    fig = plots.plot_tradeoff(sweep, sweep.setting.iloc[0])
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert set(sweep.setting) <= texts  # every setting is labelled on the plane


def test_case_figures_show_every_method_answer():
    cases = _read("cases.csv")
    images = [Image.new("RGB", (32, 32), (40 * k, 80, 120)) for k in range(len(cases))]
    methods = ["original", "po", "ga", "ga_kl", "npo", "gd", "siu"]
    fig = plots.plot_cases(images, list(cases.question), {m: list(cases[m]) for m in methods})
    text = "\n".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert all(f"{method_label(m):>8}: " in text for m in methods)
    answers = pd.DataFrame([{"method": m, "kind": k, "answer": f"{m} {k}"} for m in ("siu", "original", "ga")
                            for k in ("group", "alone")])
    fig = plots.plot_butterfly_case(images[0], images[1], answers, ("A", "B"))
    group_text = fig.axes[1].texts[0].get_text().splitlines()
    assert [line.split(":")[0].strip() for line in group_text] == ["original", "GA", "SIU"]


def test_pretrain_losses_and_loss_terms(tmp_path):
    folder = tmp_path / "tiny-x"
    folder.mkdir()
    (folder / "pretrain.json").write_text(json.dumps({"losses": [3.0 / (1 + k) for k in range(60)], "params": 2.4e6}))
    fig = plots.plot_pretrain_losses({"tiny": folder})
    assert _legend(fig) == ["tiny (2.4 M params)"]
    history = [{"step": k, "loss": 1.0 / k, "ce": 0.5 / k, "dmk": 0.5 / k} for k in range(1, 7)]
    lines = plots.plot_loss_terms(history, "SIU").axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["loss", "ce", "dmk"]
    assert list(lines[1].get_ydata()) == [h["ce"] for h in history]


def test_save_figure_writes_png_and_pdf_and_no_temporary_file(tmp_path):
    fig = plots.plot_em_per_concept(_read("fig4_runs.csv"), ("siu", "ga"))
    save_figure(fig, tmp_path / "fig4.png")
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    save_figure(fig, tmp_path / "fig4.png", close=True)
    assert sorted(first) == ["fig4.pdf", "fig4.png"]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == first  # no date: the same bytes again
    assert first["fig4.png"][:4] == b"\x89PNG" and first["fig4.pdf"][:5] == b"%PDF-"


def test_save_figure_leaves_nothing_when_writing_fails(tmp_path, monkeypatch):
    fig = plots.plot_em_per_concept(_read("fig4_runs.csv"), ("siu", "ga"))

    def broken(path, **kwargs):  # writes half a file, then fails
        Path(path).write_bytes(b"\x89PN")
        raise OSError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        save_figure(fig, tmp_path / "fig4.png")
    assert list(tmp_path.iterdir()) == []
