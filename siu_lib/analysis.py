"""The project's own analyses of SIU on the embedded model, beyond the paper's tables: the
targets protocol (:func:`siu_target_runs`, :func:`siu_targets`), the never-seen reference
(:func:`never_seen_runs`), the selection sweep behind the embedded defaults
(:class:`SweepSetting`, :func:`sweep_runs`, :func:`sweep_table`, :func:`choose_setting`) and the
pre-training seed spread (:func:`seed_spread_row`)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Sequence

import pandas as pd

from .bench import Benchmark
from .diagnostics import em_split_columns, open_kind_columns
from .errors import ConfigError
from .progress import progress_bar
from .evaluate import EvalConfig, EvalReport, evaluate_unlearning
from .finetune_data import SIUDataConfig
from .methods import SIUConfig
from .runs import RunSpec, original_report, report_row, run_one, run_path
from .train import TrainConfig


def _original_row(report: EvalReport, concept_id: str, bench: Benchmark,
                  fake_names: Sequence[str]) -> dict[str, Any]:
    """The original model's row of :func:`siu_target_runs`'s ``originals`` table."""
    row = report.row()
    return {"concept": concept_id, "recognition": report.specificity_accuracy["recognition"],
            "diversity": row["diversity"], "factual_retention": row["factual_retention"],
            **em_split_columns(report), **open_kind_columns(report, bench, fake_names)}


def siu_target_runs(model_name: str, original: Any, processor: Any, bench: Benchmark,
                    fake_names: Sequence[str], train_cfg: TrainConfig, eval_cfg: EvalConfig,
                    concept_ids: Sequence[str], seeds: Sequence[int], profile: str | None = None,
                    progress: bool = True, **run_options: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The targets protocol: SIU on every concept x seed with ``train_cfg`` (its ``steps``),
    evaluated with ``eval_cfg``. Returns ``(rows, originals)``: one :func:`run_one` row per
    run, and one row per concept of the original model (``concept``, ``recognition`` of the
    other concepts, ``diversity``, ``factual_retention``, the EM split and the
    :func:`open_kind_columns`), the reference of :func:`siu_targets`. With ``profile`` the runs' JSONs are written (see :func:`run_path`:
    their names do not cover the checkpoint, so pass ``None`` for a checkpoint other than the
    profile's own). ``run_options`` (``share_base``, ``training_args``) go to :func:`run_one`."""
    reports = {cid: original_report(original, processor, bench, cid, eval_cfg) for cid in concept_ids}
    bar = progress_bar(total=len(concept_ids) * len(seeds), desc=f"SIU {model_name}", progress=progress)
    rows = _siu_runs(model_name, original, processor, bench, fake_names, train_cfg, eval_cfg,
                     reports, seeds, profile, None, bar, **run_options)
    bar.close()
    return pd.DataFrame(rows), _originals_table(reports, bench, fake_names)


def _siu_runs(model_name: str, original: Any, processor: Any, bench: Benchmark,
              fake_names: Sequence[str], train_cfg: TrainConfig, eval_cfg: EvalConfig,
              reports: dict[str, EvalReport], seeds: Sequence[int], profile: str | None,
              method_config: Any, bar: Any, **run_options: Any) -> list[dict[str, Any]]:
    """The :func:`run_one` rows of SIU at ``train_cfg`` (its ``steps``) on every concept of
    ``reports`` (the original's report of each, in order) x ``seeds``; ``bar`` counts them;
    ``run_options`` go to :func:`run_one`."""
    rows = []
    for cid, oe in reports.items():
        for seed in seeds:
            rows.append(run_one(RunSpec(model_name, cid, "siu", seed, train_cfg.steps), original,
                                processor, bench, fake_names, train_cfg, eval_cfg, oe, profile,
                                method_config, **run_options))
            bar.update(1)
    return rows


def _originals_table(reports: dict[str, EvalReport], bench: Benchmark,
                     fake_names: Sequence[str]) -> pd.DataFrame:
    """The ``originals`` table of :func:`siu_target_runs` and :func:`sweep_runs`."""
    return pd.DataFrame([_original_row(oe, cid, bench, fake_names) for cid, oe in reports.items()])


def never_seen_runs(model_name: str, original: Any, processor: Any, reference: Any,
                    reference_processor: Any, bench: Benchmark, eval_cfg: EvalConfig,
                    concept_ids: Sequence[str], withheld: Sequence[str] | None = None,
                    progress: bool = True, fake_names: Sequence[str] = ()) -> pd.DataFrame:
    """The "never seen" reference: ``reference`` is a model pre-trained like ``original`` but
    with ``withheld`` (by default ``concept_ids``) withheld from every picture
    (``PretrainConfig.withheld``; their text facts stay), i.e. the model that exact
    unlearning (retraining without the forget set) would give. Each concept is evaluated
    exactly as an unlearned model is (:func:`siu_lib.evaluate.evaluate_unlearning` against
    ``original``, the specificity ratio against the original's own report), so the rows read
    like :func:`run_one`'s (``method`` = ``"never_seen"``, ``steps`` = 0, ``seed`` = 0) and
    :func:`siu_targets` can put them beside SIU's: what a model that never saw the concept
    scores on each target.

    The specificity items leave out every picture of a withheld concept (the reference
    never saw them; ``unseen`` of :func:`siu_lib.evaluate.evaluate_unlearning`), for the
    reference and for the original model it is compared with; the rows'
    ``original_recognition`` is the original's accuracy on those same items. Call it with
    the same ``concept_ids`` as the SIU rows it is compared with in :func:`siu_targets`.

    Both models are run with ``processor`` (the original's); ``reference_processor`` is only
    checked to share its vocabulary (the world's tokenizer), since the metrics compare the two
    models' token probabilities: :class:`ConfigError` when it does not. ``progress`` shows a
    bar over the concepts. ``fake_names`` (the world's pool) count as known people in the
    rows' :func:`open_kind_columns`.
    """
    if reference_processor.tokenizer.get_vocab() != processor.tokenizer.get_vocab():
        raise ConfigError("the never-seen reference and the original model have different "
                          "vocabularies; pre-train both on the same world")
    unseen = tuple(concept_ids if withheld is None else withheld)
    rows = []
    for cid in progress_bar(concept_ids, desc=f"never-seen {model_name}", progress=progress):
        oe = original_report(original, processor, bench, cid, eval_cfg, unseen)
        report = evaluate_unlearning(reference, original, processor, bench, cid, eval_cfg,
                                     original_specificity=oe.specificity_accuracy, unseen=unseen)
        rows.append({**report_row(model_name, "never_seen", 0, 0, report),
                     **open_kind_columns(report, bench, fake_names),
                     "original_recognition": oe.specificity_accuracy["recognition"]})
    return pd.DataFrame(rows)


#: the targets set for SIU on the embedded model, keyed like :func:`target_measures` (a floor, except
#: ``diversity_drop``, a ceiling in points; efficacy must reach 100)
TARGET_FLOORS = {"efficacy": 100.0, "generality_em": 95.0, "recognition_ratio": 0.95,
                 "own_facts": 90.0, "diversity_drop": 10.0}


#: the keys of :func:`target_measures`, in :func:`siu_targets`' row order
TARGET_MEASURES = ("efficacy", "generality_em", "generality_em_open", "generality_em_yesno",
                   "recognition_ratio", "own_facts", "diversity_drop")


def target_measures(rows: pd.DataFrame, original_recognition: float,
                    original_diversity: float) -> dict[str, float]:
    """The targets' measured quantities over runs (means): ``efficacy``, ``generality_em``, its
    open and yes/no halves, ``recognition_ratio`` (the other concepts' recognition over
    ``original_recognition``), ``own_facts`` and ``diversity_drop`` (``original_diversity``
    minus the runs' diversity, points)."""
    return {"efficacy": rows.efficacy.mean(), "generality_em": rows.generality_em.mean(),
            "generality_em_open": rows.generality_em_open.mean(),
            "generality_em_yesno": rows.generality_em_yesno.mean(),
            "recognition_ratio": rows.spec_recognition.mean() / original_recognition,
            "own_facts": rows.factual_retention.mean(),
            "diversity_drop": original_diversity - rows.diversity.mean()}


def siu_targets(rows: pd.DataFrame, originals: pd.DataFrame,
                reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """The embedded SIU targets from :func:`siu_target_runs`'s tables: one row per target with the
    ``measured`` mean over runs, its ``goal`` and whether it is ``met`` (``"yes"`` or ``"no"``;
    ``"context"`` for the two EM halves, shown beside the original model's value, not as
    targets).

    With ``reference`` (:func:`never_seen_runs`'s rows) a ``never_seen`` column gives the same
    quantity for the model that never saw the concepts: how far each target is reachable by
    forgetting alone (its recognition ratio is over the concepts it was shown, against the
    original's ``original_recognition`` on the same pictures).

    When the rows have :func:`open_kind_columns`, three more context rows say what the open
    answers on generality images name instead of the concept: the run's fake name, someone
    else, or nobody (refusals, descriptions, garbled text)."""

    def measures(r: pd.DataFrame, original_recognition: float) -> list[float]:
        return list(target_measures(r, original_recognition, originals.diversity.mean()).values())

    labels = ["efficacy (%)", "generality EM (%)", "  of which open prompts (%)",
              "  of which yes/no prompts (%)", "other concepts' recognition / original",
              "own text facts (%)", "diversity, original minus SIU (points)"]
    f = TARGET_FLOORS
    goals = [(f"= {f['efficacy']:g}", lambda v: v >= f["efficacy"]),
             (f">= {f['generality_em']:g}", lambda v: v >= f["generality_em"]),
             (f"(original {originals.generality_em_open.mean():.1f})", None),
             (f"(original {originals.generality_em_yesno.mean():.1f})", None),
             (f">= {f['recognition_ratio']:g}", lambda v: v >= f["recognition_ratio"]),
             (f">= {f['own_facts']:g}", lambda v: v >= f["own_facts"]),
             (f"<= {f['diversity_drop']:g}", lambda v: v <= f["diversity_drop"])]
    # what the open answers say instead of the concept (context, not targets): the targets ask
    # for "the fake name or a non-revealing answer, never gibberish"
    kinds = [(f"open_{k}", f"  open answers naming {what} (%)") for k, what in
             (("names_fake", "the fake name"), ("names_other", "someone else"),
              ("names_nobody", "nobody"))]
    kinds = [(c, label) for c, label in kinds if c in rows]

    def kind_means(r: pd.DataFrame) -> list[float]:
        return [r[c].mean() if c in r else float("nan") for c, _ in kinds]

    labels += [label for _, label in kinds]
    goals += [(f"(original {originals[c].mean():.1f})" if c in originals else "(not measured)", None)
              for c, _ in kinds]
    measured = measures(rows, originals.recognition.mean()) + kind_means(rows)
    table = pd.DataFrame([{"target": t, "measured": m, "goal": g,
                           "met": "context" if ok is None else ("yes" if ok(m) else "no")}
                          for t, m, (g, ok) in zip(labels, measured, goals)])
    if reference is not None:  # its recognition ratio is over the concepts it was shown
        table["never_seen"] = (measures(reference, reference.original_recognition.mean())
                               + kind_means(reference))
    return table


@dataclass
class SweepSetting:
    """One setting of SIU's selection sweep (:func:`sweep_runs`).

    Attributes:
        label: short name for tables and figures.
        train: overrides of the sweep's base :class:`~siu_lib.train.TrainConfig` (``lr``,
            ``lora_r``, ``lora_alpha``, ``projector_lr``, ``steps``, ...).
        data: overrides of :class:`~siu_lib.finetune_data.SIUDataConfig` (the 9/2/7/7 counts of
            the four targets); empty keeps the registered SIU config.
        in_recipe: ``False`` for a setting outside the recipe (other counts or another step
            count than spec section 4 fixes, or full fine-tuning of the language model instead
            of the recipe's LoRA, ``train={"use_lora": False}``): it maps the trade-off and is
            never chosen by :func:`choose_setting`.
    """

    label: str
    train: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    in_recipe: bool = True

    def __post_init__(self) -> None:
        for overrides, cls in ((self.train, TrainConfig), (self.data, SIUDataConfig)):
            unknown = sorted(set(overrides) - {f.name for f in fields(cls)})
            if unknown:
                raise ConfigError(f"sweep setting {self.label!r}: {cls.__name__} has no field(s) "
                                  f"{unknown}")
            if "seed" in overrides:  # every run sets both seeds to its own
                raise ConfigError(f"sweep setting {self.label!r}: the seed is the run's, not a "
                                  f"setting's ({cls.__name__} override seed={overrides['seed']!r})")
        self.train_config(TrainConfig())  # bad values fail here, not in the middle of a sweep
        self.method_config()

    def train_config(self, base: TrainConfig) -> TrainConfig:
        """``base`` with this setting's training overrides."""
        return replace(base, **self.train)

    def method_config(self) -> SIUConfig | None:
        """The SIU config with this setting's data overrides (``None``: the registered one)."""
        return SIUConfig(data=SIUDataConfig(**self.data)) if self.data else None

    def is_base(self, base: TrainConfig) -> bool:
        """Whether this setting is ``base`` itself with the registered SIU config (the setting
        :func:`sweep_runs` can take from ``known``)."""
        return not self.data and self.train_config(base) == base


#: the config columns of :func:`sweep_table` (after ``setting``), also on :func:`sweep_runs`' rows
SWEEP_CONFIG_COLUMNS = ("in_recipe", "use_lora", "lr", "lora_r", "lora_alpha", "projector_lr", "steps",
                        "counts")


#: the columns of :func:`sweep_table`, after ``setting``: the config, then the targets' measured
#: targets (:func:`target_measures`) and ``chosen`` (:func:`choose_setting`'s pick)
SWEEP_COLUMNS = (*SWEEP_CONFIG_COLUMNS, *TARGET_MEASURES, "chosen")


def _known_runs(known: pd.DataFrame, model_name: str, base_cfg: TrainConfig, eval_cfg: EvalConfig,
                concept_ids: Sequence[str], seeds: Sequence[int], profile: str | None) -> pd.DataFrame:
    """The rows of ``known`` that stand for the base setting in :func:`sweep_runs`: exactly one
    SIU row of ``model_name`` at ``base_cfg``'s step count per concept x seed (in that order)
    and, with ``profile``, each backed by the run file of ``base_cfg`` and ``eval_cfg``.
    :class:`ConfigError` names what is missing."""
    need = [(c, s) for c in concept_ids for s in seeds]
    mine = known[(known.model == model_name) & (known.method == "siu") & (known.steps == base_cfg.steps)]
    picked = []
    for cid, seed in need:
        hit = mine[(mine.concept == cid) & (mine.seed == seed)]
        if len(hit) != 1:
            raise ConfigError(f"`known` has {len(hit)} SIU rows of {model_name} for {cid} seed {seed} "
                              f"at {base_cfg.steps} steps; the base setting needs exactly one")
        if profile is not None:
            path = run_path(profile, RunSpec(model_name, cid, "siu", seed, base_cfg.steps), base_cfg, eval_cfg)
            if not path.is_file():
                raise ConfigError(f"`known`'s run of {cid} seed {seed} has no file {path.name}: it was "
                                  f"not run with the sweep's base and evaluation configs")
        picked.append(hit)
    return pd.concat(picked, ignore_index=True)


def sweep_runs(model_name: str, original: Any, processor: Any, bench: Benchmark,
               fake_names: Sequence[str], base_cfg: TrainConfig, settings: Sequence[SweepSetting],
               eval_cfg: EvalConfig, concept_ids: Sequence[str], seeds: Sequence[int],
               profile: str | None = None, known: pd.DataFrame | None = None,
               progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """SIU on every setting x concept x seed, by the targets protocol (:func:`siu_target_runs`).

    Returns ``(rows, originals)``: one :func:`run_one` row per run, with the setting's
    ``setting`` label and :data:`SWEEP_CONFIG_COLUMNS` (``in_recipe``, ``use_lora`` (``False``:
    full fine-tuning, where ``lora_r`` and ``lora_alpha`` do not apply), ``lr``, ``lora_r``,
    ``lora_alpha``, ``projector_lr``, the row's own ``steps`` and the target ``counts``
    "9/2/7/7"), and the original model's rows (evaluated once per concept). ``known`` (the rows
    :func:`siu_target_runs` returned for ``base_cfg`` and ``eval_cfg`` on these concepts and
    seeds) stands in for a setting that equals ``base_cfg`` with the registered SIU config,
    instead of running it again; it is checked (:func:`_known_runs`) before anything runs, as
    are the settings (at least one, distinct labels). With ``profile`` every run's JSON is
    written (:func:`run_path` tells the settings apart)."""
    labels = [s.label for s in settings]
    if not settings:
        raise ConfigError("a sweep needs at least one setting")
    if len(set(labels)) != len(labels):
        raise ConfigError(f"sweep settings need distinct labels, got {labels}")
    reused = None  # checked before anything is evaluated or trained
    if known is not None and any(s.is_base(base_cfg) for s in settings):
        reused = _known_runs(known, model_name, base_cfg, eval_cfg, concept_ids, seeds, profile)
    reports = {cid: original_report(original, processor, bench, cid, eval_cfg) for cid in concept_ids}
    rows: list[pd.DataFrame] = []
    # refreshed at most every 5 s: a notebook without widgets prints every refresh as a line
    bar = progress_bar(total=len(settings) * len(concept_ids) * len(seeds), desc=f"SIU sweep {model_name}",
                       progress=progress, mininterval=5.0)
    for setting in settings:
        tcfg, mcfg = setting.train_config(base_cfg), setting.method_config()
        d = mcfg.data if mcfg is not None else SIUDataConfig()
        info = {"setting": setting.label, "in_recipe": setting.in_recipe, "use_lora": tcfg.use_lora,
                "lr": tcfg.lr, "lora_r": tcfg.lora_r, "lora_alpha": tcfg.lora_alpha,
                "projector_lr": tcfg.projector_lr,
                "counts": f"{d.n_fake_name}/{d.n_false_description}/{d.n_own_facts}/{d.n_other_facts}"}
        if reused is not None and setting.is_base(base_cfg):
            rows.append(reused.assign(**info))
            bar.update(len(reused))
            continue
        out = _siu_runs(model_name, original, processor, bench, fake_names, tcfg, eval_cfg, reports,
                        seeds, profile, mcfg, bar)
        rows.append(pd.DataFrame(out).assign(**info))
    bar.close()
    return pd.concat(rows, ignore_index=True), _originals_table(reports, bench, fake_names)


def sweep_table(rows: pd.DataFrame, originals: pd.DataFrame, **rule: float) -> pd.DataFrame:
    """One row per setting of :func:`sweep_runs` (in the order run): its config
    (:data:`SWEEP_CONFIG_COLUMNS`), the measured targets (:func:`target_measures`:
    ``efficacy``, ``generality_em`` and its two halves, ``recognition_ratio``, ``own_facts``,
    ``diversity_drop``) and ``chosen``: whether :func:`choose_setting` (with ``rule``'s
    thresholds) picks it."""
    out = []
    for label, part in rows.groupby("setting", sort=False):
        first = part.iloc[0]
        out.append({"setting": label, **{k: first[k] for k in SWEEP_CONFIG_COLUMNS},
                    **target_measures(part, originals.recognition.mean(), originals.diversity.mean())})
    table = pd.DataFrame(out, columns=["setting", *SWEEP_COLUMNS[:-1]])
    return table.assign(chosen=table.setting == choose_setting(table, **rule))


def choose_setting(table: pd.DataFrame, min_ratio: float = TARGET_FLOORS["recognition_ratio"],
                   min_facts: float = TARGET_FLOORS["own_facts"],
                   max_diversity_drop: float = TARGET_FLOORS["diversity_drop"]) -> str | None:
    """The embedded profile's selection rule on :func:`sweep_table`'s table: among the
    settings in the paper's recipe that keep the other concepts' recognition >= ``min_ratio``
    of the original's, the own text facts >= ``min_facts`` and the diversity drop <=
    ``max_diversity_drop`` points, the one with the largest generality EM (a tie goes to the
    smaller lr). Returns its label, or ``None`` when no setting qualifies."""
    ok = table[table.in_recipe.astype(bool) & (table.recognition_ratio >= min_ratio)
               & (table.own_facts >= min_facts) & (table.diversity_drop <= max_diversity_drop)]
    if ok.empty:
        return None
    return str(ok.sort_values(["generality_em", "lr"], ascending=[False, True]).iloc[0].setting)


#: the stand-in model's recognition target for every concept (a fraction), used by :func:`seed_spread_row`
CONCEPT_RECOGNITION_TARGET = 0.98


def seed_spread_row(pretrain_seed: int, knowledge: pd.Series, per_concept: pd.Series,
                    targets: pd.DataFrame, checkpoint: str) -> dict[str, Any]:
    """One row of ``scripts/seed_spread.py``'s table for one pre-training seed: ``knowledge``
    (a row of :func:`siu_lib.embedded.pretrain_table`'s table), the weakest concept of
    ``per_concept`` (its recognition column) and how many concepts are below
    :data:`CONCEPT_RECOGNITION_TARGET`, and SIU's measured targets (:func:`siu_targets`) as
    ``siu_`` columns, with ``siu_targets_met`` as "met/of"; when ``targets`` has the
    never-seen reference's column, its efficacy, generality EM (and yes/no half) and
    recognition ratio as ``never_seen_`` columns."""
    measured = dict(zip(targets.target.str.strip(), targets.measured))
    met = targets.met[targets.met != "context"]
    reference = {}
    if "never_seen" in targets:
        ref = dict(zip(targets.target.str.strip(), targets.never_seen))
        reference = {"never_seen_efficacy": ref["efficacy (%)"],
                     "never_seen_generality_em": ref["generality EM (%)"],
                     "never_seen_em_yesno": ref["of which yes/no prompts (%)"],
                     "never_seen_recognition_ratio": ref["other concepts' recognition / original"]}
    return {
        "pretrain_seed": pretrain_seed, "checkpoint": checkpoint,
        **{k: knowledge[k] for k in ("pretrain_seconds", "recognition", "facts", "general_vqa",
                                     "second_language", "group_photo", "yes_to_own", "yes_to_other")},
        "weakest_concept": per_concept.idxmin(), "weakest_concept_recognition": per_concept.min(),
        "concepts_below_target": int((per_concept < CONCEPT_RECOGNITION_TARGET).sum()),
        "siu_efficacy": measured["efficacy (%)"],
        "siu_generality_em": measured["generality EM (%)"],
        "siu_em_open": measured["of which open prompts (%)"],
        "siu_em_yesno": measured["of which yes/no prompts (%)"],
        "siu_recognition_ratio": measured["other concepts' recognition / original"],
        "siu_own_facts": measured["own text facts (%)"],
        "siu_diversity_drop": measured["diversity, original minus SIU (points)"],
        "siu_targets_met": f"{int((met == 'yes').sum())}/{len(met)}",
        **reference,
    }


#: each baseline's learning-rate grid for the frontiers (beside SIU's own sweep): the embedded
#: default's lr and a step below and above it on a factor-of-two ladder
FRONTIER_LR_FACTORS = (0.5, 1.0, 2.0)


def frontier_runs(model_name: str, original: Any, processor: Any, bench: Benchmark,
                  fake_names: Sequence[str], base_cfg: TrainConfig, methods: Sequence[str],
                  lr_factors: Sequence[float], eval_cfg: EvalConfig, concept_ids: Sequence[str],
                  seeds: Sequence[int], profile: str | None = None,
                  progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each method's forgetting/keeping trade-off on SIU's targets protocol: every method x
    learning rate (``base_cfg.lr`` times each of ``lr_factors``) x concept x seed, at
    ``base_cfg``'s steps. Returns ``(rows, originals)`` as :func:`sweep_runs` does, each row
    with its ``method`` and ``lr``."""
    if not methods or not lr_factors:
        raise ConfigError(f"frontier_runs needs methods and lr factors, got {list(methods)}, {list(lr_factors)}")
    reports = {cid: original_report(original, processor, bench, cid, eval_cfg) for cid in concept_ids}
    jobs = [(m, f, cid, seed) for m in methods for f in lr_factors for cid in concept_ids for seed in seeds]
    rows = []
    for method, factor, cid, seed in progress_bar(jobs, desc=f"frontiers {model_name}", progress=progress,
                                                  mininterval=5.0):
        tcfg = replace(base_cfg, lr=base_cfg.lr * factor)
        row = run_one(RunSpec(model_name, cid, method, seed, tcfg.steps), original, processor, bench,
                      fake_names, tcfg, eval_cfg, reports[cid], profile)
        rows.append({**row, "lr": tcfg.lr})
    return pd.DataFrame(rows), _originals_table(reports, bench, fake_names)


def frontier_table(rows: pd.DataFrame, originals: pd.DataFrame) -> pd.DataFrame:
    """One row per method x lr of :func:`frontier_runs` (in the order run) with the targets
    protocol's measures (:func:`target_measures`)."""
    out = [{"method": method, "lr": lr, **target_measures(part, originals.recognition.mean(),
                                                        originals.diversity.mean())}
           for (method, lr), part in rows.groupby(["method", "lr"], sort=False)]
    return pd.DataFrame(out)


def best_at_ratio(table: pd.DataFrame, min_ratio: float = TARGET_FLOORS["recognition_ratio"]) -> pd.DataFrame:
    """Per method, the setting with the largest generality EM among those that keep the other
    concepts' recognition ratio >= ``min_ratio`` (a tie goes to the smaller lr), with
    ``qualifies`` True; a method with no such setting gets its setting that keeps the most
    (largest ratio) with ``qualifies`` False, so every number is a measurement. Columns:
    ``method``, ``qualifies``, ``lr``, ``generality_em``, ``recognition_ratio``."""
    out = []
    for method, part in table.groupby("method", sort=False):
        ok = part[part.recognition_ratio >= min_ratio]
        best = (ok.sort_values(["generality_em", "lr"], ascending=[False, True]) if not ok.empty
                else part.sort_values(["recognition_ratio", "lr"], ascending=[False, True])).iloc[0]
        out.append({"method": method, "qualifies": not ok.empty, "lr": best.lr,
                    "generality_em": best.generality_em, "recognition_ratio": best.recognition_ratio})
    return pd.DataFrame(out)
