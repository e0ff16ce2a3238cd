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
from .tables import METHOD_ORDER as TABLES_METHOD_ORDER, TABLE2_METHODS  # noqa: E402


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
#: labels of the table columns that are not registered metrics
_EXTRA_LABELS = {"specificity_ratio": "Specificity / original ↑"}

#: every figure's methods in one order: the original, the baselines, SIU (the tables' order,
#: :data:`siu_lib.tables.METHOD_ORDER`), SIU's ablations (Table 2's), the never-seen reference
METHOD_ORDER = (*TABLES_METHOD_ORDER, *TABLE2_METHODS[1:], "never_seen")
#: every figure's method colours: one hue per method, SIU a strong blue, its ablations lighter
#: blues and teals, the two references grey and black
METHOD_COLORS = {
    "original": "#7f7f7f", "po": "#2ca02c", "ga": "#d62728", "ga_kl": "#ff7f0e", "npo": "#9467bd",
    "gd": "#8c564b", "siu": "#1f4e9c", "siu_no_token_mask": "#4f8fd6", "siu_no_vocab_mask": "#17becf",
    "siu_plain_kl": "#9ecae1", "siu_no_a": "#6baed6", "siu_no_b": "#3182bd",
    "siu_no_c": "#08519c", "siu_no_d": "#c6dbef", "never_seen": "#000000"}
#: every figure's method names, as the paper writes them
METHOD_LABELS = {
    "original": "original", "po": "PO", "ga": "GA", "ga_kl": "GA+KL", "npo": "NPO", "gd": "GD",
    "siu": "SIU", "siu_no_token_mask": "SIU w/o token mask", "siu_no_vocab_mask": "SIU w/o vocab mask",
    "siu_plain_kl": "SIU, plain KL", "siu_no_a": "SIU w/o (a)", "siu_no_b": "SIU w/o (b)",
    "siu_no_c": "SIU w/o (c)", "siu_no_d": "SIU w/o (d)", "never_seen": "never seen"}


def method_color(method: str) -> str:
    """The colour every figure gives ``method`` (grey-blue for a method outside
    :data:`METHOD_COLORS`)."""
    return METHOD_COLORS.get(method, "#5f7f9f")


def method_label(method: str) -> str:
    """``method`` as every figure names it (the registry name when it has no paper name)."""
    return METHOD_LABELS.get(method, method)


def sort_methods(methods: "Any") -> list[str]:
    """The distinct ``methods`` in :data:`METHOD_ORDER`, any unknown ones after them in the order
    given."""
    seen = list(dict.fromkeys(methods))
    rank = {m: k for k, m in enumerate(METHOD_ORDER)}
    return sorted(seen, key=lambda m: (rank.get(m, len(rank)), seen.index(m)))


def save_figure(fig: "plt.Figure", path: str | Path, dpi: int = 150, close: bool = False) -> None:
    """Write ``fig`` as PNG (at ``dpi``) and as PDF beside it (``path`` with either suffix),
    each to a temporary file renamed into place, so no half-written figure is left behind, and
    without a creation date, so an unchanged figure writes the same bytes; ``close`` closes it
    afterwards (a notebook leaves it open to show it)."""
    path = Path(path)
    for suffix, metadata in ((".png", {"Software": None}), (".pdf", {"CreationDate": None, "Producer": None})):
        target = path.with_suffix(suffix)
        tmp = target.with_name(f".{target.stem}.tmp{suffix}")
        try:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", metadata=metadata)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
    if close:
        plt.close(fig)


def plot_step_curves(steps: "Any", model: str | None = None) -> "plt.Figure":
    """Figs 2-3: every metric against the number of fine-tuning steps, one line per method
    (mean over concepts and seeds) with a band of one std over them, from the rows of
    ``steps.csv``."""
    import seaborn as sns

    data = steps if model is None else steps[steps["model"] == model]
    order = sort_methods(data["method"])
    data = data.assign(method=data["method"].map(method_label))
    palette = {method_label(m): method_color(m) for m in order}
    metrics = [m for m in METRIC_LABELS if m in data.columns]
    cols = 4
    rows = (len(metrics) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        sns.lineplot(data=data, x="steps", y=metric, hue="method", hue_order=list(palette), palette=palette,
                     marker="o", errorbar="sd", ax=ax, legend=ax is axes.flat[0])
        ax.set_title(METRIC_LABELS[metric])
        ax.set_ylabel("")
        if metric == "fluency":  # perplexities span orders of magnitude once a model collapses
            ax.set_yscale("log")
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    first = axes.flat[0]
    if first.get_legend() is not None:  # one legend for every panel, below them
        handles, labels = first.get_legend_handles_labels()
        first.get_legend().remove()
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(f"Metrics vs fine-tuning steps{f' ({model})' if model else ''}")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
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
        sub = data[data["model"] == model]
        for method in sort_methods(sub["method"]):
            curve = sub[sub["method"] == method]
            style = {"ls": "--", "lw": 1.6} if method == "never_seen" else {"lw": 1.3}
            ax.plot(curve["fpr"], curve["tpr"], label=method_label(method), color=method_color(method), **style)
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
        sub = sub.set_index("method").loc[sort_methods(sub["method"])].reset_index()
        width = 0.8 / max(1, len(sub))
        x = np.arange(len(columns))
        for k, row in enumerate(sub.itertuples()):
            ax.bar(x + (k - (len(sub) - 1) / 2) * width, [getattr(row, c) for c in columns], width,
                   yerr=[getattr(row, f"{c}_std") for c in columns], capsize=1.5,
                   label=method_label(row.method), color=method_color(row.method), error_kw={"lw": 0.6})
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_ylabel("leak rate (%) ↓")
        ax.set_ylim(0, 105)
        ax.set_title(f"{model}: answers that reveal the concept, per attack")
        ax.legend(fontsize=7, ncol=len(sub), loc="upper center")
    fig.tight_layout()
    return fig


#: the four targets of SIU's fine-tuning data, as Fig 1 names them (spec 01, section 2)
TARGET_TITLES = {"a": "(a) align with an unseen name", "b": "(b) a new visual description",
                 "c": "(c) keep its text facts", "d": "(d) keep other concepts"}


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def plot_pipeline(concept: str, forget_image: "Any", records: "list[Any]", metrics: "list[str]",
                  attacks: "list[str]", steps: int = 6) -> "plt.Figure":
    """Fig 1, the pipeline, drawn from the objects it shows: a request to forget ``concept``,
    its MMUBench forget image (``forget_image``, a PIL image), one of SIU's fine-tuning
    ``records`` for each target (question → answer, the token-mask span underlined in words:
    the part DMK leaves out of the KL term), the DMK loss, the unlearned model after ``steps``
    steps, and what evaluates it: the registered ``metrics`` and ``attacks`` (their labels
    from the registry)."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig = plt.figure(figsize=(15, 5.6))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 15)
    ax.set_ylim(0, 5.6)
    ax.axis("off")

    def box(x: float, y: float, w: float, h: float, title: str, body: str = "", color: str = "#e8eef7",
            size: float = 8.0) -> None:
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.04,rounding_size=0.12",
                                    facecolor=color, edgecolor="#34495e", lw=1.0))
        ax.text(x + w / 2, y + h - 0.12, title, ha="center", va="top", fontsize=size + 1, weight="bold")
        if body:
            ax.text(x + 0.1, y + h - 0.45, body, ha="left", va="top", fontsize=size, linespacing=1.25)

    def arrow(x0: float, y0: float, x1: float, y1: float) -> None:
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=14,
                                     color="#34495e", lw=1.3))

    # 1. the request and the concept's one image
    box(0.15, 3.2, 2.1, 1.9, "Request", _wrap(f'"Forget what {concept} looks like."', 24), "#fdf2e9")
    box(0.15, 0.5, 2.1, 2.4, "MMUBench concept", "", "#fdf2e9")
    img_ax = fig.add_axes((0.035, 0.12, 0.11, 0.28))
    img_ax.imshow(forget_image)
    img_ax.set_xticks([])
    img_ax.set_yticks([])
    img_ax.set_title("the one forget image", fontsize=7)
    arrow(1.2, 3.2, 1.2, 2.95)
    # 2. SIU's four targets built from that image
    by_target = {}
    for r in records:
        by_target.setdefault(r.target, r)
    y = 5.2
    ax.text(4.45, 5.4, "SIU: multifaceted fine-tuning data", ha="center", fontsize=10, weight="bold")
    for key in ("a", "b", "c", "d"):
        r = by_target.get(key)
        if r is None:
            continue
        shown = "[image] " if r.image is not None else "[text] "
        body = _wrap(shown + r.question, 44) + "\n→ " + _wrap(r.answer, 42)
        if r.mask_span:
            body += "\n" + _wrap(f"token mask K_S = 0 on: {r.mask_span}", 44)
        box(2.6, y - 1.2, 3.7, 1.2, TARGET_TITLES[key], body, "#eaf5ea", size=6.8)
        y -= 1.28
    arrow(2.3, 1.7, 2.58, 1.7)
    # 3. the DMK loss and the unlearned model
    dmk = ("CE on the four targets\n+ KL(p0 ‖ pθ) to the frozen M0,\n  over the answer positions\n"
           "  where K_S = 1 (token mask)\n  and the vocabulary but the\n  concept's name tokens\n  (K_V, vocabulary mask)")
    box(6.7, 2.0, 2.6, 2.6, "Dual Masked KL (DMK)", dmk, "#f4ecf7")
    arrow(6.3, 3.0, 6.68, 3.0)
    box(9.7, 2.4, 1.9, 1.8, "Unlearned MLLM Mθ", _wrap(f"{steps} fine-tuning steps on the one image's data", 22),
        "#fdebd0")
    arrow(9.3, 3.3, 9.68, 3.3)
    # 4. what measures it
    box(12.0, 3.0, 2.85, 2.3, "Evaluation", "\n".join(metrics), "#e8f8f5", size=7.0)
    box(12.0, 0.3, 2.85, 2.5, "Attacks", "\n".join(attacks), "#fadbd8", size=6.6)
    arrow(11.6, 3.6, 11.98, 4.1)
    arrow(11.6, 3.0, 11.98, 1.8)
    return fig


def plot_em_per_concept(rows: "Any", methods: "list[str] | tuple[str, ...]", metric: str = "generality_em") -> "plt.Figure":
    """Fig 4: ``metric`` per concept, one bar per method (in ``methods``' order), the mean over
    seeds with error bars of one std, from per-run rows (``concept``, ``method``, ``metric``)."""
    import numpy as np

    concepts = list(dict.fromkeys(rows["concept"]))
    stats = rows.groupby(["concept", "method"])[metric].agg(mean="mean", std=lambda v: v.std(ddof=0))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(concepts) + 2), 3.8))
    width = 0.8 / len(methods)
    x = np.arange(len(concepts))
    for k, method in enumerate(methods):
        means = [stats.loc[(c, method), "mean"] if (c, method) in stats.index else np.nan for c in concepts]
        stds = [stats.loc[(c, method), "std"] if (c, method) in stats.index else 0.0 for c in concepts]
        ax.bar(x + (k - (len(methods) - 1) / 2) * width, means, width, yerr=stds, capsize=2,
               label=method_label(method), color=method_color(method))
    ax.set_xticks(x, concepts)
    ax.set_ylim(0, 105)
    ax.set_ylabel(METRICS[metric].label if metric in METRICS else metric)
    ax.set_title("EM per concept, concepts not used in Table 1")
    ax.legend(fontsize=8, ncol=len(methods), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    fig.tight_layout()
    return fig


def plot_cases(images: "list[Any]", questions: "list[str]", answers: "dict[str, list[str]]",
               title: str = "") -> "plt.Figure":
    """Example generations: one row per image (shown at left, its question above the answers),
    each method's answer to that question on that image (``answers``: method -> one answer per
    row), the same images and prompts for every method."""
    n, methods = len(images), list(answers)
    if not n or any(len(v) != n for v in answers.values()) or len(questions) != n:
        from .errors import ConfigError
        raise ConfigError(f"plot_cases needs one question and one answer per method for each of the {n} images")
    fig, axes = plt.subplots(n, 2, figsize=(11, 1.9 * n + 0.4), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 5.5]})
    for row, (img, question) in enumerate(zip(images, questions)):
        axes[row, 0].imshow(img)
        axes[row, 0].axis("off")
        ax = axes[row, 1]
        ax.axis("off")
        lines = [f"Q: {question}"] + [f"{method_label(m):>8}: {answers[m][row]}" for m in methods]
        ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=7.5, family="monospace",
                transform=ax.transAxes)
    fig.suptitle(title or "The same images and prompts, every method's answer", fontsize=10)
    fig.tight_layout()
    return fig


def plot_butterfly_case(group_image: "Any", alone_image: "Any", answers: "Any", names: "tuple[str, str]") -> "plt.Figure":
    """The butterfly effect on one pair: the group photo of A and B and a picture of B alone,
    and under each, every method's answer (``answers``: rows with ``method``, ``kind`` "group"
    or "alone", ``answer``; the first answer of each kind per method), A and B named in the
    title (``names``)."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 5.2), gridspec_kw={"width_ratios": [1, 4.5]})
    for row, (kind, img) in enumerate((("group", group_image), ("alone", alone_image))):
        axes[row, 0].imshow(img)
        axes[row, 0].axis("off")
        axes[row, 0].set_title("A and B" if kind == "group" else "B alone", fontsize=8)
        first = answers[answers["kind"] == kind].groupby("method", sort=False).first()
        first = first.loc[sort_methods(first.index)]
        text = "\n".join(f"{method_label(m):>8}: {r.answer}" for m, r in first.iterrows())
        axes[row, 1].axis("off")
        axes[row, 1].text(0.0, 1.0, text, va="top", ha="left", fontsize=7.5, family="monospace",
                          transform=axes[row, 1].transAxes)
    fig.suptitle(f"Butterfly effect: unlearning A = {names[0]}; its partner B = {names[1]}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_multi_concept(rows: "Any", metrics: "tuple[str, ...]" = ("generality_em", "specificity_ratio")) -> "plt.Figure":
    """Multi-concept unlearning: each of ``metrics`` against the number of concepts forgotten,
    one colour per method, solid for the concepts unlearned at once and dashed for one request
    after another, the original model dotted grey (rows of ``multi_concept_runs.csv``). The
    specificity is drawn as its ratio to the original on the same items by default, since the
    items change with the count (no other concept is left to recognise once all are forgotten)."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        for method in sort_methods(rows["method"]):
            for mode, sub in rows[rows["method"] == method].groupby("mode", sort=False):
                if method == "original":
                    ax.plot(sub["concepts"], sub[metric], color=method_color(method), ls=":", marker=".",
                            label=method_label(method))
                    continue
                ax.plot(sub["concepts"], sub[metric], color=method_color(method),
                        ls="-" if mode == "at_once" else "--", marker="o", ms=3,
                        label=f"{method_label(method)} ({'at once' if mode == 'at_once' else 'one by one'})")
        ax.set_xlabel("concepts forgotten")
        ax.set_title(METRICS[metric].label if metric in METRICS else _EXTRA_LABELS.get(metric, metric))
    axes.flat[0].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def plot_frontiers(table: "Any", ideal: "tuple[float, float] | None" = None,
                   min_ratio: float | None = None) -> "plt.Figure":
    """Each method's frontier: generality EM (y) against the other concepts' recognition ratio
    (x) at each learning rate of :func:`siu_lib.analysis.frontier_table` (points joined in lr
    order, the lr written beside each), the never-seen reference as the ideal point
    (``ideal``: ratio, EM) and the ratio threshold of the best-EM table as a dashed line."""
    fig, ax = plt.subplots(figsize=(6.8, 4.6))
    for method in sort_methods(table["method"]):
        part = table[table["method"] == method].sort_values("lr")
        colour = method_color(method)
        ax.plot(part["recognition_ratio"], part["generality_em"], marker="o", color=colour,
                label=method_label(method))
        for row in part.itertuples():
            ax.annotate(f"{row.lr:.1e}", (row.recognition_ratio, row.generality_em), fontsize=6,
                        xytext=(3, 2), textcoords="offset points", color=colour)
    if ideal is not None:
        ax.scatter([ideal[0]], [ideal[1]], marker="*", s=220, color="black", zorder=5, label="never seen (ideal)")
    if min_ratio is not None:
        ax.axvline(min_ratio, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("other concepts' recognition / original ↑")
    ax.set_ylabel("generality EM (%) ↑")
    ax.set_title("Each method's trade-off over its learning rate")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig
