"""Experiment drivers shared by the notebooks: unlearn a concept with a method and seed,
evaluate it, write the per-run JSON (config, seed, versions, commit, per-example values), and
collect rows into pandas tables.

Per-run files go to ``data/results/<profile>/runs/`` (git-ignored); the aggregated CSV tables
beside them are what the notebooks commit for the ``default`` profile.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from .bench import Benchmark
from .errors import ConfigError, UnknownNameError
from .evaluate import EvalConfig, EvalReport, evaluate_unlearning
from .finetune_data import SIUDataConfig, concept_facts, model_facts
from .generate import generate
from .metrics import PROMPT_KINDS, reveals_as, reveals_open, reveals_yesno
from .methods import SIUConfig, UnlearnTarget, with_seed
from .paths import cache_dir, results_dir
from .results import atomic_write_json, config_digest, run_metadata
from .train import TrainConfig, unlearn


@dataclass
class RunSpec:
    """One unlearning run: which model, concept, method, seed and how many steps."""

    model_name: str
    concept_id: str
    method: str
    seed: int
    steps: int


#: the EM metrics whose per-prompt-kind split (open / yes-no) gets its own table columns
EM_SPLIT_METRICS = ("efficacy", "generality_em")


def em_split_columns(report: EvalReport) -> dict[str, float]:
    """The efficacy and generality EM of ``report`` split by prompt kind, as table columns.

    ``efficacy_open``, ``efficacy_yesno``, ``generality_em_open``, ``generality_em_yesno``: the
    EM over the open prompts only (the answer does not name the concept) and over the yes/no
    prompts only (the answer does not start with yes). The paper's EM is their mean over all
    prompts; the split shows which half a method forgets (a kind with no prompts gives nan).
    """
    out = {}
    for metric in EM_SPLIT_METRICS:
        if metric in report.metrics:
            by_kind = report.metrics[metric].details.get("by_kind", {})
            out.update({f"{metric}_{kind}": by_kind.get(kind, float("nan")) for kind in PROMPT_KINDS})
    return out


#: the kinds of answer :func:`yesno_answer_kinds` sorts the yes/no answers into
YESNO_ANSWER_KINDS = ("no", "yes_names_concept", "yes_names_other", "yes_names_nobody")


def yesno_answer_kinds(generations: Sequence[dict[str, Any]], concept_name: str,
                       other_names: Sequence[str], group: str = "generality") -> dict[str, float]:
    """How a run's answers to the yes/no prompts ("is <c> in this image?") are made up, in % of
    the answers of ``group`` (an :class:`EvalReport`'s generation records, as saved in a run's
    JSON under ``evaluation.generations``).

    - ``no``: the answer does not start with yes (it does not reveal the concept);
    - ``yes_names_concept``: it says yes and names the concept (a word of its name, as the
      open-prompt test of the EM);
    - ``yes_names_other``: it says yes but names someone else only (a word of one of
      ``other_names``, e.g. of the run's fake name, so a garbled "Liagouk Brat" still counts):
      the yes contradicts the identity the model names;
    - ``yes_names_nobody``: any other yes ("Yes.", garbled text).

    The four add up to 100 (nan each when the group has no yes/no answer).
    """
    others = [n for n in other_names if n and n != concept_name]

    def kind_of(a: str) -> str:
        if not reveals_yesno(a):
            return "no"
        if reveals_open(a, concept_name):
            return "yes_names_concept"
        return "yes_names_other" if any(reveals_open(a, n) for n in others) else "yes_names_nobody"

    return _answer_shares(generations, group, "yesno", YESNO_ANSWER_KINDS, kind_of)


def _answer_shares(generations: Sequence[dict[str, Any]], group: str, prompt_kind: str,
                   kinds: Sequence[str], kind_of: Callable[[str], str]) -> dict[str, float]:
    """% of the ``prompt_kind`` answers of ``group`` that ``kind_of`` puts in each of
    ``kinds`` (nan each when there is none)."""
    answers = [g["answer"] for g in generations
               if g.get("group") == group and g.get("kind") == prompt_kind]
    counts = dict.fromkeys(kinds, 0)
    for a in answers:
        counts[kind_of(a)] += 1
    n = len(answers)
    return {k: (100.0 * v / n if n else float("nan")) for k, v in counts.items()}


#: the kinds of answer :func:`open_answer_kinds` sorts the open-prompt answers into
OPEN_ANSWER_KINDS = ("names_concept", "names_fake", "names_other", "names_nobody")


def open_answer_kinds(generations: Sequence[dict[str, Any]], concept_name: str,
                      other_names: Sequence[str], fake_name: str | None = None,
                      group: str = "generality") -> dict[str, float]:
    """What a run's answers to the open prompts ("who is this?") say instead of the concept,
    in % of the open answers of ``group`` (an :class:`EvalReport`'s generation records).

    Names are matched as the EM's open-prompt test matches the concept's
    (:func:`siu_lib.metrics.reveals_open`: a word of the name longer than two letters, as a
    whole word, case-insensitive), in this order:

    - ``names_concept``: names the concept (100 minus this is the open half of the EM);
    - ``names_fake``: names the run's ``fake_name`` (SIU's intended answer); nan when there
      is none (the original model, a baseline, the never-seen reference);
    - ``names_other``: names someone else, one of ``other_names`` (the other concepts, the
      other people of the fake-name pool);
    - ``names_nobody``: names no known person: a refusal, a description, or garbled text
      such as "The picture shows T k T kite." or "This is Bredaefeite." (the EM counts all of
      these as forgotten, and the diversity metric, unique words per answer, does not tell
      them apart).

    The kinds add up to 100 (nan each when the group has no open answer).
    """
    others = [n for n in other_names if n and n not in (concept_name, fake_name)]

    def kind_of(a: str) -> str:
        if reveals_open(a, concept_name):
            return "names_concept"
        if fake_name and reveals_open(a, fake_name):
            return "names_fake"
        return "names_other" if any(reveals_open(a, n) for n in others) else "names_nobody"

    out = _answer_shares(generations, group, "open", OPEN_ANSWER_KINDS, kind_of)
    if not fake_name:
        out["names_fake"] = float("nan")
    return out


def open_kind_columns(report: EvalReport, bench: Benchmark, fake_names: Sequence[str] = (),
                      fake_name: str | None = None) -> dict[str, float]:
    """:func:`open_answer_kinds` of a report's generality answers as table columns
    (``open_names_fake``, ``open_names_other``, ``open_names_nobody``; ``names_concept`` is
    ``100 - generality_em_open``), the other names being the benchmark's other concepts and
    the fake-name pool."""
    name = bench.concept(report.concept_id).name
    others = [c.name for c in bench.concepts if c.name != name] + list(fake_names)
    kinds = open_answer_kinds(report.generations, name, others, fake_name)
    return {f"open_{k}": v for k, v in kinds.items() if k != "names_concept"}


#: the columns of :func:`question_consistency`
QUESTION_CONSISTENCY_COLUMNS = ("questions", "same_verdict", "same_verdict_if_independent",
                                "forgotten_everywhere", "revealed_everywhere", "mixed")


def question_consistency(generations: Sequence[dict[str, Any]], concept_name: str,
                         prompt_kind: str) -> dict[str, float]:
    """Does a run's forgetting follow the question, or the picture?

    The evaluation asks every prompt of a set on the forget image (efficacy) and the same
    prompts again, in turn, on the generality images, so each question is asked on several
    pictures of the concept. This groups the ``prompt_kind`` answers (``"open"`` or
    ``"yesno"``) of both groups by their question and gives each question a verdict per
    picture, the EM's test (:func:`siu_lib.metrics.reveals_as`). Only questions asked on at least two pictures
    count.

    Returns:
        ``questions`` (a count): how many questions count. The rest are % of them:
        ``same_verdict``: one verdict on every picture; ``same_verdict_if_independent``:
        what ``same_verdict`` would be if answers revealed the concept independently of
        their question, at the run's own rates (one for the forget image, one for the
        generality images, over the counted answers; per question the product of the
        reveal rates of its pictures plus the product of their complements);
        ``forgotten_everywhere`` / ``revealed_everywhere``: reveal the concept on no picture
        / on every picture; ``mixed``: the rest (the three add up to 100). ``same_verdict``
        well above ``same_verdict_if_independent`` means that the question decides whether
        the concept is revealed, whatever the picture, and that the EM is set by how many
        questions were forgotten; near it, no such pattern; below it, the picture decides
        (some pictures forgotten on every question, others on none). Percentages are nan
        when no question counts.

    Raises:
        UnknownNameError: ``prompt_kind`` is not one of :data:`siu_lib.metrics.PROMPT_KINDS`.
    """
    if prompt_kind not in PROMPT_KINDS:
        raise UnknownNameError(f"unknown prompt kind {prompt_kind!r}; known: {list(PROMPT_KINDS)}")
    verdicts: dict[str, list[tuple[str, bool]]] = {}
    for g in generations:
        if g.get("kind") == prompt_kind and g.get("group") in ("efficacy", "generality"):
            verdicts.setdefault(g["question"], []).append(
                (g["group"], reveals_as(g["answer"], prompt_kind, concept_name)))
    asked = [v for v in verdicts.values() if len(v) >= 2]
    n = len(asked)
    share = (lambda k: 100.0 * k / n if n else float("nan"))  # noqa: E731
    none_ = sum(not any(r for _, r in v) for v in asked)
    all_ = sum(all(r for _, r in v) for v in asked)
    rate = {}
    for group in ("efficacy", "generality"):
        hits = [r for v in asked for grp, r in v if grp == group]
        rate[group] = sum(hits) / len(hits) if hits else float("nan")
    independent = sum(math.prod(rate[grp] for grp, _ in v) + math.prod(1 - rate[grp] for grp, _ in v)
                      for v in asked)
    return {"questions": n, "same_verdict": share(none_ + all_),
            "same_verdict_if_independent": share(independent),
            "forgotten_everywhere": share(none_), "revealed_everywhere": share(all_),
            "mixed": share(n - none_ - all_)}


def run_path(profile: str, spec: RunSpec, train_cfg: TrainConfig, eval_cfg: EvalConfig,
             method_config: Any = None) -> Path:
    """Where :func:`run_one` writes the JSON of ``spec`` under ``profile``'s results.

    The name reads ``<model>_<method>_<concept>_s<seed>_n<steps>_<hash>.json``; the hash covers
    the run's training config (with ``spec``'s steps and seed) and its evaluation config, so two
    runs of the same spec evaluated differently (notebook 03 on more generality images than
    notebook 04) get two files instead of one overwriting the other. A ``method_config`` (one
    that replaces the registered one; ``None`` keeps it) is hashed too, with its data seed set
    to the run's: even one equal to the registered config gets its own name."""
    tcfg = replace(train_cfg, steps=spec.steps, seed=spec.seed)
    hashed = {"train": asdict(tcfg), "eval": asdict(eval_cfg)}
    if method_config is not None:
        hashed["method"] = asdict(with_seed(method_config, spec.seed))
    digest = config_digest(hashed, length=8)
    return (results_dir(profile) / "runs" /
            f"{spec.model_name}_{spec.method}_{spec.concept_id}_s{spec.seed}_n{spec.steps}_{digest}.json")


def load_run(profile: str, spec: RunSpec, train_cfg: TrainConfig, eval_cfg: EvalConfig,
             method_config: Any = None) -> dict[str, Any]:
    """The JSON :func:`run_one` wrote for ``spec`` with these configs (config, seed, versions,
    commit, history, row and the evaluation with every generation); :class:`UnknownNameError`
    naming the file when there is none."""
    path = run_path(profile, spec, train_cfg, eval_cfg, method_config)
    if not path.is_file():
        raise UnknownNameError(f"no run file {path.name} under {path.parent}: run_one has not "
                                f"written {spec} with these configs")
    return json.loads(path.read_text())


def make_target(bench: Benchmark, concept_id: str, original: Any, processor: Any,
                fake_names: Sequence[str], facts_cache: str | Path | None = None) -> UnlearnTarget:
    """The :class:`UnlearnTarget` of a benchmark concept (its forget image, the other concepts,
    the fake-name pool, and the original model's generator for GA-type data).

    Concepts without stored facts (a real model on the ``paper`` instance) get their text
    facts from the original model's own answers (:func:`siu_lib.finetune_data.model_facts`),
    generated once and cached in ``facts_cache`` (default: ``data/cache/facts/<bench>.json``).
    """
    c = bench.concept(concept_id)
    original_generate = partial(generate, original, processor, max_new_tokens=32, progress=False)
    facts_of = concept_facts
    if any(not o.facts for o in bench.concepts):
        cache = Path(facts_cache) if facts_cache else cache_dir("facts") / f"{bench.name}.json"
        known = model_facts(original_generate, [o.name for o in bench.concepts if not o.facts], cache)

        def facts_of(concept: Any) -> list[tuple[str, str]]:
            return concept_facts(concept) or known[concept.name]
    return UnlearnTarget(c, bench.forget_image(c.concept_id), bench.concepts, fake_names,
                         original_generate=original_generate, facts_of=facts_of)


def original_report(original: Any, processor: Any, bench: Benchmark, concept_id: str,
                    eval_cfg: EvalConfig, unseen: Sequence[str] = ()) -> EvalReport:
    """The original model's own metrics on a concept (the "original" row of every table);
    ``unseen`` as in :func:`siu_lib.evaluate.evaluate_unlearning`."""
    return evaluate_unlearning(original, original, processor, bench, concept_id, eval_cfg,
                               unseen=unseen)


def report_row(model_name: str, method: str, steps: int, seed: int, report: EvalReport,
               specificity_ratio: float | None = None) -> dict[str, Any]:
    """One table row of an evaluation: the run's keys, the Table 1 values, the specificity
    ratio (the report's own unless given), each specificity task's accuracy (``spec_``) and
    the EM split (:func:`em_split_columns`)."""
    if specificity_ratio is None:
        specificity_ratio = report.metrics["specificity"].details.get("ratio_overall")
    return {"model": model_name, "method": method, "steps": steps, "seed": seed,
            "concept": report.concept_id, **report.row(), "specificity_ratio": specificity_ratio,
            **{f"spec_{k}": v for k, v in report.specificity_accuracy.items()},
            **em_split_columns(report)}


def run_one(spec: RunSpec, original: Any, processor: Any, bench: Benchmark,
            fake_names: Sequence[str], train_cfg: TrainConfig, eval_cfg: EvalConfig,
            original_eval: EvalReport, profile: str | None = None,
            method_config: Any = None) -> dict[str, Any]:
    """Unlearn, evaluate and (with ``profile``) write the per-run JSON; return the table row.

    ``method_config`` replaces the registered method's config (its data seed is set to the
    run's seed, as the registered one's is). The original model is never modified (the run
    trains a deep copy)."""
    target = make_target(bench, spec.concept_id, original, processor, fake_names)
    tcfg = replace(train_cfg, steps=spec.steps, seed=spec.seed)
    mcfg = None if method_config is None else with_seed(method_config, spec.seed)
    t0 = time.perf_counter()
    result = unlearn(copy.deepcopy(original), processor, target, spec.method, method_config=mcfg,
                     train_config=tcfg)
    t1 = time.perf_counter()
    report = evaluate_unlearning(result.model, original, processor, bench, spec.concept_id, eval_cfg,
                                 original_specificity=original_eval.specificity_accuracy)
    t2 = time.perf_counter()
    fake = next((r.mask_span for r in result.records if r.target == "a"), None)
    row = {**report_row(spec.model_name, spec.method, spec.steps, spec.seed, report),
           **open_kind_columns(report, bench, fake_names, fake),
           "train_seconds": round(t1 - t0, 2), "eval_seconds": round(t2 - t1, 2)}
    if profile is not None:
        atomic_write_json(run_path(profile, spec, tcfg, eval_cfg, method_config),
                          {**run_metadata(asdict(spec), spec.seed), "train_config": asdict(tcfg),
                           "method_config": asdict(result.method_config),
                           "eval_config": asdict(eval_cfg), "history": result.history,
                           "row": row, "evaluation": report.to_dict()})
    return row


def training_fit(model: Any, processor: Any, records: Sequence[Any], concept_name: str,
                 max_new_tokens: int = 32) -> pd.DataFrame:
    """Whether a model gives SIU's own image records the answers they train: for each record
    of target (a) or (b) (the forget image with a question), the model's greedy answer to that
    very question beside the trained one.

    This separates two reasons for a low generality EM: a run that learned its records on the
    forget image but did not carry them to other images of the concept, and a run that did not
    learn them at all (too few or too small steps). The columns:

    - ``target``, ``question``, ``trained`` (the record's answer), ``answer`` (the model's);
    - ``reveals``: the EM's test for the prompt kind, :func:`siu_lib.metrics.reveals_open`
      (names the concept) for (a) and :func:`siu_lib.metrics.reveals_yesno` (says yes) for (b);
    - ``learned``: (a) the answer names the record's fake name (its ``mask_span``, matched by
      word as the EM matches names) and not the concept; (b) it does not say yes.

    Args:
        model: any LLaVA-family model (the original, or an unlearned one).
        processor: its processor.
        records: the run's records (``UnlearnResult.records``); text-only ones are skipped.
        concept_name: the unlearned concept's name.
        max_new_tokens: greedy answer length.
    """
    rows = [r for r in records if r.target in ("a", "b")]
    if not rows:
        raise ConfigError("training_fit needs records of target (a) or (b) (the forget image); got "
                          f"targets {sorted({r.target for r in records})}")
    answers = generate(model, processor, [(r.load_image(), r.question) for r in rows],
                       max_new_tokens=max_new_tokens, progress=False)
    return pd.DataFrame([{"target": r.target, "question": r.question, "trained": r.answer, "answer": a,
                          **record_fit(r, a, concept_name)} for r, a in zip(rows, answers)])


def record_fit(record: Any, answer: str, concept_name: str) -> dict[str, bool]:
    """``reveals`` and ``learned`` of one (a) or (b) record's answer (see :func:`training_fit`)."""
    if record.target == "a":
        reveal = reveals_open(answer, concept_name)
        return {"reveals": reveal,
                "learned": bool(record.mask_span) and reveals_open(answer, record.mask_span) and not reveal}
    if record.target == "b":
        reveal = reveals_yesno(answer)
        return {"reveals": reveal, "learned": not reveal}
    raise ConfigError(f"record_fit takes records of target (a) or (b), got {record.target!r}")


def original_row(model_name: str, report: EvalReport) -> dict[str, Any]:
    """The table row of the original model on one concept."""
    return report_row(model_name, "original", 0, 0, report, specificity_ratio=1.0)


def mean_std_table(rows: pd.DataFrame, by: Sequence[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Mean and std (over seeds and concepts) of each metric per group: columns ``<metric>``
    and ``<metric>_std``."""
    g = rows.groupby(list(by), sort=False)[list(metrics)]
    mean, std = g.mean(), g.std(ddof=0).add_suffix("_std")
    return pd.concat([mean, std], axis=1).reset_index()


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
                    progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The targets protocol: SIU on every concept x seed with ``train_cfg`` (its ``steps``),
    evaluated with ``eval_cfg``. Returns ``(rows, originals)``: one :func:`run_one` row per
    run, and one row per concept of the original model (``concept``, ``recognition`` of the
    other concepts, ``diversity``, ``factual_retention``, the EM split and the
    :func:`open_kind_columns`), the reference of :func:`siu_targets`. With ``profile`` the runs' JSONs are written (see :func:`run_path`:
    their names do not cover the checkpoint, so pass ``None`` for a checkpoint other than the
    profile's own)."""
    from tqdm.auto import tqdm

    reports = {cid: original_report(original, processor, bench, cid, eval_cfg) for cid in concept_ids}
    bar = tqdm(total=len(concept_ids) * len(seeds), desc=f"SIU {model_name}", disable=not progress)
    rows = _siu_runs(model_name, original, processor, bench, fake_names, train_cfg, eval_cfg,
                     reports, seeds, profile, None, bar)
    bar.close()
    return pd.DataFrame(rows), _originals_table(reports, bench, fake_names)


def _siu_runs(model_name: str, original: Any, processor: Any, bench: Benchmark,
              fake_names: Sequence[str], train_cfg: TrainConfig, eval_cfg: EvalConfig,
              reports: dict[str, EvalReport], seeds: Sequence[int], profile: str | None,
              method_config: Any, bar: Any) -> list[dict[str, Any]]:
    """The :func:`run_one` rows of SIU at ``train_cfg`` (its ``steps``) on every concept of
    ``reports`` (the original's report of each, in order) x ``seeds``; ``bar`` counts them."""
    rows = []
    for cid, oe in reports.items():
        for seed in seeds:
            rows.append(run_one(RunSpec(model_name, cid, "siu", seed, train_cfg.steps), original,
                                processor, bench, fake_names, train_cfg, eval_cfg, oe, profile,
                                method_config))
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
    from tqdm.auto import tqdm

    if reference_processor.tokenizer.get_vocab() != processor.tokenizer.get_vocab():
        raise ConfigError("the never-seen reference and the original model have different "
                          "vocabularies; pre-train both on the same world")
    unseen = tuple(concept_ids if withheld is None else withheld)
    rows = []
    for cid in tqdm(concept_ids, desc=f"never-seen {model_name}", disable=not progress):
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
    ``measured`` mean over runs, its ``goal`` and whether it is ``met`` (``None`` for the two
    EM halves, shown beside the original model's value as context, not as targets).

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
    goals += [(f"(original {originals[c].mean():.1f})"
               if c in originals and originals[c].notna().any() else "", None) for c, _ in kinds]
    measured = measures(rows, originals.recognition.mean()) + kind_means(rows)
    table = pd.DataFrame([{"target": t, "measured": m, "goal": g,
                           "met": None if ok is None else bool(ok(m))}
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
    from tqdm.auto import tqdm

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
    bar = tqdm(total=len(settings) * len(concept_ids) * len(seeds), desc=f"SIU sweep {model_name}",
               disable=not progress, mininterval=5.0)
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
    met = targets.met.dropna()
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
        "siu_targets_met": f"{int(met.sum())}/{len(met)}",
        **reference,
    }
