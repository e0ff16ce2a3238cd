"""One function per paper figure, reading saved results only (no figure runs a model);
plus displays of fine-tuning records and loss curves for the walk-through notebook."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .metrics import METRICS, TABLE1_METRICS  # noqa: E402
from .paths import FIGURES_DIR, results_dir  # noqa: E402


def figure_dir(profile: str) -> Path:
    """Where a profile's figures go: ``figures/`` for ``default`` (committed), a git-ignored
    folder under ``data/results/<profile>/figures`` otherwise."""
    folder = FIGURES_DIR if profile == "default" else results_dir(profile) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _smooth(values: list[float], window: int = 25) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot_pretrain_losses(checkpoints: dict[str, str | Path]) -> "plt.Figure":
    """Pre-training loss curves (moving average) of the embedded checkpoints, from their
    ``pretrain.json`` records."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for size, folder in checkpoints.items():
        info = json.loads((Path(folder) / "pretrain.json").read_text())
        ax.plot(_smooth(info["losses"]), label=f"{size} ({info['params'] / 1e6:.1f} M params)")
    ax.set_xlabel("step")
    ax.set_ylabel("answer cross-entropy")
    ax.set_yscale("log")
    ax.set_title("Pre-training of the embedded MLLM on the synthetic world")
    ax.legend()
    fig.tight_layout()
    return fig


def render_token_masks(processor: "Any", records: "list[Any]") -> str:
    """HTML table of fine-tuning records with their answer tokens as the model sees them
    (after image expansion and collation): tokens with token-mask 0 (inside the mask span, no
    KL) in red, KL-active answer tokens in green."""
    import html

    from .losses import IGNORE_INDEX
    from .train import collate_records

    batch = collate_records(processor, records)
    tok = processor.tokenizer
    rows = []
    for b, rec in enumerate(records):
        spans = []
        for pos in (batch["labels"][b] != IGNORE_INDEX).nonzero().flatten().tolist():
            text = tok.decode([int(batch["input_ids"][b, pos])]) or "␣"
            colour = "#f4b6b6" if batch["token_mask"][b, pos] == 0 else "#c8ecc8"
            spans.append(f'<span style="background:{colour};padding:0 1px;margin:0 1px">'
                         f'{html.escape(text)}</span>')
        img = "🖼 " if rec.has_image else ""
        rows.append(f"<tr><td>{rec.target}</td><td style='text-align:left'>{img}{html.escape(rec.question)}"
                    f"</td><td style='text-align:left'>{''.join(spans)}</td></tr>")
    return ("<table><tr><th>target</th><th>prompt</th><th>answer tokens "
            "(red: token mask 0, green: KL applies)</th></tr>" + "".join(rows) + "</table>")


def plot_loss_terms(history: "list[dict[str, float]]", title: str = "") -> "plt.Figure":
    """The loss and its terms per unlearning step (from ``UnlearnResult.history``)."""
    fig, ax = plt.subplots(figsize=(5, 3))
    keys = [k for k in history[0] if k != "step"]
    for k in keys:
        ax.plot([h["step"] for h in history], [h[k] for h in history], marker="o", label=k)
    ax.set_xlabel("step")
    ax.set_ylabel("value")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


#: how each Table 1 metric is labelled in figures, with its direction (the registry's labels)
METRIC_LABELS = {name: METRICS[name].label for name in TABLE1_METRICS}


def plot_step_curves(steps: "Any", model: str | None = None) -> "plt.Figure":
    """Figs 2-3: every metric against the number of fine-tuning steps, one line per method
    (mean over seeds and concepts), from the rows of ``steps.csv``."""
    import seaborn as sns

    data = steps if model is None else steps[steps["model"] == model]
    metrics = [m for m in METRIC_LABELS if m in data.columns]
    cols = 4
    rows = (len(metrics) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        sns.lineplot(data=data, x="steps", y=metric, hue="method", marker="o", errorbar=None, ax=ax,
                     legend=ax is axes.flat[0])
        ax.set_title(METRIC_LABELS[metric])
        ax.set_ylabel("")
        if metric == "fluency":  # perplexities span orders of magnitude once a model collapses
            ax.set_yscale("log")
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    if axes.flat[0].get_legend() is not None:
        axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"Metrics vs fine-tuning steps{f' ({model})' if model else ''}")
    fig.tight_layout()
    return fig


def plot_tradeoff(sweep: "Any", chosen: str | None = None, min_ratio: float | None = None,
                  min_em: float | None = None, title: str = "") -> "plt.Figure":
    """SIU's settings on the plane of the two targets that pull against each other: the other
    concepts' recognition ratio (x) and the generality EM (y), from
    :func:`siu_lib.analysis.sweep_table`'s table. Settings in the paper's recipe are filled
    circles, the others hollow squares; ``chosen`` (a label) is ringed; the corner the targets
    ask for (x >= ``min_ratio``, y >= ``min_em``; default
    :data:`siu_lib.analysis.TARGET_FLOORS`) is shaded."""
    from .analysis import TARGET_FLOORS

    min_ratio = TARGET_FLOORS["recognition_ratio"] if min_ratio is None else min_ratio
    min_em = TARGET_FLOORS["generality_em"] if min_em is None else min_em
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    xs, ys = sweep["recognition_ratio"].astype(float), sweep["generality_em"].astype(float)
    x0 = min(xs.min(), min_ratio) - 0.01
    x1 = max(xs.max() + 0.01, 1.01)  # a setting may keep the others better than the original
    y0 = max(0.0, min(ys.min(), min_em) - 5.0)
    ax.axvspan(min_ratio, x1, ymin=(min_em - y0) / (101.0 - y0), color="tab:green", alpha=0.12,
               lw=0, label=f"targets (ratio \u2265 {min_ratio:g}, EM \u2265 {min_em:g})")
    ax.axvline(min_ratio, color="tab:green", lw=0.8, ls="--")
    ax.axhline(min_em, color="tab:green", lw=0.8, ls="--")
    placed: list[tuple[float, float]] = []  # label anchors above-right, in axis fractions
    for row in sweep.itertuples():
        inside = bool(row.in_recipe)
        ax.scatter(row.recognition_ratio, row.generality_em, s=46, marker="o" if inside else "s",
                   facecolor="tab:blue" if inside else "none", edgecolor="tab:blue" if inside else "tab:red",
                   zorder=3)
        if row.setting == chosen:
            ax.scatter(row.recognition_ratio, row.generality_em, s=180, facecolor="none",
                       edgecolor="black", lw=1.4, zorder=4, label=f"chosen: {chosen}")
        # the chosen point's label goes below left, clear of its ring; a label that would
        # overlap one already placed above right of a close neighbour goes below right
        fx, fy = (row.recognition_ratio - x0) / (x1 - x0), (row.generality_em - y0) / (101.0 - y0)
        crowded = any(abs(fx - px) < 0.06 and abs(fy - py) < 0.04 for px, py in placed)
        if row.setting == chosen:
            offset, ha = (-9, -13), "right"
        elif crowded:
            offset, ha = (4, -10), "left"
        else:
            offset, ha = (4, 3), "left"
            placed.append((fx, fy))
        ax.annotate(row.setting, (row.recognition_ratio, row.generality_em), fontsize=7,
                    xytext=offset, ha=ha, textcoords="offset points")
    ax.scatter([], [], marker="o", facecolor="tab:blue", edgecolor="tab:blue", label="paper's recipe")
    ax.scatter([], [], marker="s", facecolor="none", edgecolor="tab:red", label="outside the recipe")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, 101.0)
    ax.set_xlabel("other concepts' recognition / original ↑")
    ax.set_ylabel("generality EM (%) ↑")
    ax.set_title(title or "SIU: forgetting vs keeping the other concepts")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def plot_roc(roc: "Any", score: str = "min_k_pp") -> "plt.Figure":
    """Table 4's membership inference as ROC curves, one panel per model: each method's mean
    curve over its runs for one membership ``score`` (rows of ``table4_roc.csv``: ``model``,
    ``method``, ``score``, ``fpr``, ``tpr``), the never-seen reference dashed black, chance
    dotted. A curve near the never-seen reference's is a model that forgot as if it had never
    learned; the original's is the most separable."""
    data = roc[roc["score"] == score]
    models = list(dict.fromkeys(data["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4.4 * len(models), 4.0), squeeze=False)
    for ax, model in zip(axes.flat, models):
        for method, curve in data[data["model"] == model].groupby("method", sort=False):
            style = {"color": "black", "ls": "--", "lw": 1.6} if method == "never_seen" else {"lw": 1.3}
            ax.plot(curve["fpr"], curve["tpr"], label=method, **style)
        ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=0.8)
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.set_title(f"{model}: MIA ROC ({score})")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_perturbation_leaks(table: "Any", columns: "list[str]", labels: "list[str]") -> "plt.Figure":
    """Table 4's leak rates as grouped bars, one panel per model: one group per attack column
    (``columns``, named ``labels``), one bar per method, error bars the std over runs (the
    table's ``_std`` columns)."""
    import numpy as np

    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(len(models), 1, figsize=(11, 3.4 * len(models)), squeeze=False)
    for ax, model in zip(axes.flat, models):
        sub = table[table["model"] == model]
        width = 0.8 / max(1, len(sub))
        x = np.arange(len(columns))
        for k, row in enumerate(sub.itertuples()):
            ax.bar(x + (k - (len(sub) - 1) / 2) * width, [getattr(row, c) for c in columns], width,
                   yerr=[getattr(row, f"{c}_std") for c in columns], capsize=1.5, label=row.method,
                   color="black" if row.method == "never_seen" else None, error_kw={"lw": 0.6})
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_ylabel("leak rate (%) ↓")
        ax.set_ylim(0, 105)
        ax.set_title(f"{model}: answers that reveal the concept, per attack")
        ax.legend(fontsize=7, ncol=len(sub), loc="upper center")
    fig.tight_layout()
    return fig
