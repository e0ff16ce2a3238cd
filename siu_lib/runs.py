"""The run store: unlearn a concept with a method and seed, evaluate it, write the per-run
JSON (config, seed, versions, commit, history, per-example values and every generation) and
return its table row; read a run back.

Per-run files go to ``data/results/<profile>/runs/`` (git-ignored), named by :func:`run_path`;
the aggregated tables beside them are what the notebooks commit for the ``default`` profile.
"""

from __future__ import annotations

import copy
import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Sequence

from .bench import Benchmark
from .diagnostics import em_split_columns, open_kind_columns
from .errors import UnknownNameError
from .evaluate import EvalConfig, EvalReport, evaluate_unlearning
from .attacks import AttackConfig, Identity, available_attacks
from .finetune_data import concept_facts, model_facts
from .judges import judge_description
from .generate import generate
from .models import AdaptersDisabled
from .methods import UnlearnTarget, with_seed
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


def run_path(profile: str, spec: RunSpec, train_cfg: TrainConfig, eval_cfg: EvalConfig,
             method_config: Any = None) -> Path:
    """Where :func:`run_one` writes the JSON of ``spec`` under ``profile``'s results.

    The name reads ``<model>_<method>_<concept>_s<seed>_n<steps>_<hash>.json``; the hash covers
    the run's training config (with ``spec``'s steps and seed) and its evaluation config, so two
    runs of the same spec evaluated differently (notebook 03 on more generality images than
    notebook 04) get two files instead of one overwriting the other. A ``method_config`` (one
    that replaces the registered one; ``None`` keeps it) is hashed too, with its data seed set
    to the run's: even one equal to the registered config gets its own name; so is the judge,
    when the environment configures an LLM judge (:func:`siu_lib.judges.judge_description`)."""
    tcfg = replace(train_cfg, steps=spec.steps, seed=spec.seed)
    hashed = {"train": asdict(tcfg), "eval": asdict(eval_cfg)}
    if method_config is not None:
        hashed["method"] = asdict(with_seed(method_config, spec.seed))
    return _run_file(results_dir(profile) / "runs", spec, hashed)


def _run_file(folder: Path, spec: RunSpec, hashed: dict[str, Any]) -> Path:
    """``<model>_<method>_<concept>_s<seed>_n<steps>_<hash>.json`` in ``folder``, the hash over
    ``hashed`` and, when the environment configures an LLM judge, the judge (an LLM judge's
    runs never overwrite the rule judge's)."""
    judge = judge_description()
    if judge["kind"] != "rule":
        hashed = {**hashed, "judge": judge}
    digest = config_digest(hashed, length=8)
    return folder / f"{spec.model_name}_{spec.method}_{spec.concept_id}_s{spec.seed}_n{spec.steps}_{digest}.json"


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
            method_config: Any = None, share_base: bool = False,
            training_args: dict[str, Any] | None = None) -> dict[str, Any]:
    """Unlearn, evaluate and (with ``profile``) write the per-run JSON; return the table row.

    ``method_config`` replaces the registered method's config (its data seed is set to the
    run's seed, as the registered one's is). The original model is left as it was: the run
    trains a deep copy, or with ``share_base`` and LoRA (a real model, where a second copy
    costs its whole size) adapters put into it and taken out again after the evaluation
    (:func:`unlearned_model`). ``training_args``: the machine's ``TrainingArguments`` fields
    (:func:`siu_lib.train.unlearn`; a paper-scale profile's gradient checkpointing)."""
    tcfg = replace(train_cfg, steps=spec.steps, seed=spec.seed)
    t0 = time.perf_counter()
    with unlearned_model(spec, original, processor, bench, fake_names, train_cfg, method_config,
                         share_base, training_args) as (result, reference):
        t1 = time.perf_counter()
        report = evaluate_unlearning(result.model, reference, processor, bench, spec.concept_id, eval_cfg,
                                     original_specificity=original_eval.specificity_accuracy)
    fake = next((r.mask_span for r in result.records if r.target == "a"), None)
    row = {**report_row(spec.model_name, spec.method, spec.steps, spec.seed, report),
           **open_kind_columns(report, bench, fake_names, fake),
           "train_seconds": round(t1 - t0, 2), "eval_seconds": report.seconds}
    if profile is not None:
        atomic_write_json(run_path(profile, spec, tcfg, eval_cfg, method_config),
                          {**run_metadata(asdict(spec), spec.seed), "train_config": asdict(tcfg),
                           "method_config": asdict(result.method_config), "judge": judge_description(),
                           "eval_config": asdict(eval_cfg), "history": result.history,
                           "row": row, "evaluation": report.to_dict()})
    return row


def _unlearned(spec: RunSpec, original: Any, processor: Any, bench: Benchmark, fake_names: Sequence[str],
               train_cfg: TrainConfig, method_config: Any = None, share_base: bool = False,
               training_args: dict[str, Any] | None = None) -> Any:
    """The :class:`~siu_lib.train.UnlearnResult` of ``spec``: ``original`` trained with
    ``train_cfg`` at the spec's steps and seed (and ``method_config`` with the spec's seed), the
    one training :func:`run_one` and :func:`attack_one` share. A deep copy of ``original`` is
    trained, unless ``share_base`` and the run uses LoRA: then the adapters go into ``original``
    itself (:func:`unlearned_model` takes them out again; should the training raise,
    ``original`` keeps them: load it again). ``training_args`` go to :func:`~siu_lib.train.unlearn`."""
    target = make_target(bench, spec.concept_id, original, processor, fake_names)
    tcfg = replace(train_cfg, steps=spec.steps, seed=spec.seed)
    mcfg = None if method_config is None else with_seed(method_config, spec.seed)
    model = original if share_base and tcfg.use_lora else copy.deepcopy(original)
    return unlearn(model, processor, target, spec.method, method_config=mcfg, train_config=tcfg,
                   training_args=training_args)


@contextmanager
def unlearned_model(spec: RunSpec, original: Any, processor: Any, bench: Benchmark, fake_names: Sequence[str],
                    train_cfg: TrainConfig, method_config: Any = None, share_base: bool = False,
                    training_args: dict[str, Any] | None = None):
    """Unlearn ``spec`` (:func:`_unlearned`) and yield ``(result, reference)``: the
    :class:`~siu_lib.train.UnlearnResult` and the model to evaluate it against as M0.

    With ``share_base`` and LoRA no second copy of the weights exists: the adapters are put into
    ``original``, the reference is the same model with its adapters disabled
    (:class:`~siu_lib.models.AdaptersDisabled`), and on leaving the adapters are taken out
    again (:func:`restore_base`, nothing merged), so ``original`` is M0 as before. Otherwise the result
    holds a trained deep copy and the reference is ``original``."""
    result = _unlearned(spec, original, processor, bench, fake_names, train_cfg, method_config, share_base,
                        training_args)
    shared = share_base and result.train_config.use_lora
    try:
        yield result, (AdaptersDisabled(result.model) if shared else original)
    finally:
        if shared:
            restore_base(result.model)
            original.eval()


def restore_base(model: Any) -> Any:
    """Take a peft model's adapters out of the model they were put into, leaving it as it was
    before: every LoRA layer gives back its base layer, and every module trained as a copy
    (``modules_to_save``, the projector) gives back the original module, not the trained copy
    (peft's ``unload`` alone keeps the copy of the active adapter). Nothing is merged. Returns
    the base model."""
    from peft.utils import ModulesToSaveWrapper

    for module in model.modules():
        if isinstance(module, ModulesToSaveWrapper):
            module.set_adapter([])  # no active copy: unloading gives back the original module
    return model.unload()


def original_row(model_name: str, report: EvalReport, bench: Benchmark,
                 fake_names: Sequence[str] = ()) -> dict[str, Any]:
    """The table row of the original model on one concept (``report``: :func:`original_report`),
    with the columns of :func:`run_one`'s rows: the open answers' kinds (no fake name, so
    ``open_names_fake`` is 0), no training (``train_seconds`` 0) and the report's evaluation
    seconds."""
    return {**report_row(model_name, "original", 0, 0, report, specificity_ratio=1.0),
            **open_kind_columns(report, bench, fake_names),
            "train_seconds": 0.0, "eval_seconds": report.seconds}


#: the methods of an attack run that train nothing: the original model, and the reference
#: pre-trained without the concept's pictures (passed in as ``model``)
UNTRAINED = ("original", "never_seen")


def _trained_config(spec: RunSpec, train_cfg: TrainConfig) -> dict[str, Any] | None:
    """The training config of an attack run as its JSON and hash record it (``None`` for a
    method of :data:`UNTRAINED`)."""
    if spec.method in UNTRAINED:
        return None
    return asdict(replace(train_cfg, steps=spec.steps, seed=spec.seed))


def attack_path(profile: str, spec: RunSpec, train_cfg: TrainConfig, eval_cfg: EvalConfig,
                attack_cfg: AttackConfig, n_nonmembers: int) -> Path:
    """Where :func:`attack_one` writes the JSON of ``spec``: ``runs/attacks/`` of the profile's
    results, named like :func:`run_path`, the hash also covering the attack config and the
    number of non-member identities (and no training config for a method of
    :data:`UNTRAINED`)."""
    hashed = {"train": _trained_config(spec, train_cfg), "eval": asdict(eval_cfg),
              "attack": asdict(attack_cfg), "nonmembers": n_nonmembers}
    return _run_file(results_dir(profile) / "runs" / "attacks", spec, hashed)


def attack_one(spec: RunSpec, original: Any, processor: Any, bench: Benchmark,
               fake_names: Sequence[str], train_cfg: TrainConfig, eval_cfg: EvalConfig,
               attack_cfg: AttackConfig, nonmembers: Sequence[Identity] = (),
               profile: str | None = None, model: Any = None, share_base: bool = False,
               training_args: dict[str, Any] | None = None) -> tuple[dict[str, Any], EvalReport]:
    """Unlearn as :func:`run_one` does (the same training, so the same model), then run every
    attack that applies (:func:`siu_lib.attacks.available_attacks`) against ``original``;
    with ``profile`` write the per-run JSON (:func:`attack_path`). ``spec.method`` may also be
    ``"original"`` (the original model attacked as it is) or ``"never_seen"`` (``model``, the
    reference pre-trained without the concept's pictures); neither trains. ``share_base`` and
    ``training_args``: as in :func:`run_one`.

    Returns the Table 4 row (the run's keys, each attack's value, the paper protocol's kept
    and counted pairs, the seconds spent) and the evaluation report (per-example values:
    the membership scores and their labels for the ROC curves)."""
    names = available_attacks(bench, spec.concept_id, nonmembers)
    if spec.method == "never_seen" and model is None:
        raise UnknownNameError("attack_one: method 'never_seen' needs the reference model as model=")
    t0 = time.perf_counter()
    history: list = []

    def attacked(unlearned: Any, reference: Any) -> EvalReport:
        return evaluate_unlearning(unlearned, reference, processor, bench, spec.concept_id, eval_cfg,
                                   metrics=names, attack_config=attack_cfg, nonmembers=nonmembers)

    if spec.method in UNTRAINED:
        t1 = time.perf_counter()
        report = attacked(original if spec.method == "original" else model, original)
    else:
        with unlearned_model(spec, original, processor, bench, fake_names, train_cfg,
                             share_base=share_base, training_args=training_args) as (result, reference):
            history = result.history
            t1 = time.perf_counter()
            report = attacked(result.model, reference)
    rouge = report.metrics.get("mia_rouge")
    row = {"model": spec.model_name, "method": spec.method, "steps": spec.steps, "seed": spec.seed,
           "concept": spec.concept_id, **{n: report.metrics[n].value for n in names},
           "mia_kept": rouge.details["n_kept"] if rouge else None,
           "mia_counted": rouge.details["n_counted"] if rouge else None,
           "train_seconds": round(t1 - t0, 2), "attack_seconds": report.seconds}
    if profile is not None:
        atomic_write_json(attack_path(profile, spec, train_cfg, eval_cfg, attack_cfg, len(nonmembers)),
                          {**run_metadata(asdict(spec), spec.seed),
                           "train_config": _trained_config(spec, train_cfg),
                           "eval_config": asdict(eval_cfg), "attack_config": asdict(attack_cfg),
                           "nonmembers": [m.name for m in nonmembers], "judge": judge_description(),
                           "history": history, "row": row, "evaluation": report.to_dict()})
    return row, report
