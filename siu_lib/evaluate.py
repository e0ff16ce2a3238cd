"""Evaluate one unlearned model on one concept of an MMUBench instance: every metric of
``03-metrics-attacks.md``, with the generations behind them.

All generation is batched greedy decoding through :func:`siu_lib.generate.generate`
(``max_new_tokens`` = :attr:`EvalConfig.max_new_tokens`). The prompts:

* **efficacy**: the forget image with every open and yes/no prompt of the concept;
* **generality** (EM, G-Eval, fluency, diversity): ``n_generality_images`` generality images,
  each with one open and one yes/no prompt (the prompt banks are cycled);
* **C-Dis**: the first ``n_cdis_images`` of those images with the probe question;
* **specificity**: recognition of the other concepts (``n_other_images`` generality images
  each, "who is this?"), the yes/no verification of each of them on the same images ("is
  <their own name> in the image?", the concept's own yes/no prompts: right when the answer is
  yes, so a model that answers no to every yes/no question pays for it here), ``n_vqa_items``
  general visual-QA items, and the other concepts' text facts;
* **factual retention**: the target's own text facts, asked without an image;
* **attacks** (only when asked for by name, :mod:`siu_lib.attacks`): the second-language,
  multi-hop and paraphrased prompts and the perturbed images, on the same generality images.

The metrics come from the registry (:data:`siu_lib.metrics.METRICS`): each declares the groups
of prompts it reads, the evaluation generates those groups in one call (in the fixed order of
:data:`siu_lib.metrics.GENERATION_GROUPS`) and hands every metric the same
:class:`siu_lib.metrics.EvalContext`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Collection, Sequence

from . import attacks as _attacks  # registers the attacks
from .bench import Benchmark
from .errors import UnknownNameError
from .generate import generate
from .judges import Judge, configured_judge
from .metrics import ATTACK_GROUPS, GENERATION_GROUPS, METRICS, TABLE1_METRICS, EvalContext, MetricResult


@dataclass
class EvalConfig:
    """How much of the benchmark one evaluation reads.

    Attributes:
        n_generality_images: generality images of the target (each with one open and one
            yes/no prompt).
        n_cdis_images: generality images used by C-Dis (two forward passes each).
        n_other_images: generality images of each other concept (specificity recognition).
        n_other_facts: text facts asked per other concept (specificity).
        n_vqa_items: general visual-QA items (an even stride over the benchmark's items).
        max_new_tokens: greedy decoding length.
        batch_size: generation batch size.
    """

    n_generality_images: int = 20
    n_cdis_images: int = 8
    n_other_images: int = 2
    n_other_facts: int = 1
    n_vqa_items: int = 40
    max_new_tokens: int = 32
    batch_size: int = 32


@dataclass
class EvalReport:
    """Every metric of one (model, concept) and the generations behind them."""

    concept_id: str
    metrics: dict[str, MetricResult]
    generations: list[dict[str, Any]] = field(default_factory=list)
    specificity_accuracy: dict[str, float] = field(default_factory=dict)
    #: wall-clock seconds the evaluation took (generation and metrics)
    seconds: float = 0.0

    def row(self) -> dict[str, float]:
        """The Table 1 values (``TABLE1_METRICS``) of this report."""
        return {k: self.metrics[k].value for k in TABLE1_METRICS if k in self.metrics}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (per-example values and generations included)."""
        return {"concept_id": self.concept_id, "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
                "generations": self.generations, "specificity_accuracy": self.specificity_accuracy,
                "seconds": self.seconds}


def _fact_pairs(concept: Any) -> list[tuple[str, str]]:
    return [(f.question, f.value) for f in concept.facts if f.key != "summary"]


def _evaluation_metrics(names: Sequence[str] | None) -> list[str]:
    """The registered metrics an evaluation computes: ``names`` (checked: metrics and attacks),
    or every metric that is computed from an evaluation and is not an attack, in registration
    order."""
    known = [n for n, m in METRICS.items() if m.from_context is not None]
    if names is None:
        return [n for n in known if not METRICS[n].attack]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UnknownNameError(f"unknown evaluation metric(s) {unknown}; known: {known}")
    return list(names)


def evaluate_unlearning(model: Any, original: Any, processor: Any, bench: Benchmark, concept_id: str,
                        cfg: EvalConfig | None = None, judge: Judge | None = None,
                        original_specificity: dict[str, float] | None = None,
                        progress: bool = False, unseen: Collection[str] = (),
                        forgotten: Collection[str] = (),
                        metrics: Sequence[str] | None = None,
                        attack_config: "_attacks.AttackConfig | None" = None,
                        nonmembers: Sequence["_attacks.Identity"] = ()) -> EvalReport:
    """Every registered metric of ``model`` (Mθ) against ``original`` (M0) on one concept (or
    only ``metrics``, by registered name): the prompts the metrics read are generated in one
    call, then each metric reads them (:meth:`siu_lib.metrics.Metric.evaluate`).

    ``original_specificity`` (task -> accuracy in %) is the original model's specificity on
    the same items, for the ratio; pass ``evaluate_unlearning(original, original, ...)``'s
    ``specificity_accuracy`` (computed with the same ``unseen``).

    ``unseen``: other concepts whose pictures are left out of the specificity items (the
    recognition items and the general visual-QA items that picture them; their text facts
    stay in): those a never-seen reference model was never shown
    (:func:`siu_lib.analysis.never_seen_runs`), which no model could be asked to keep.

    ``forgotten``: other concepts unlearned in the same run (multi-concept unlearning): their
    recognition and yes/no verification leave the specificity items (no model should still
    recognise them), their text facts and the general visual QA on their pictures stay.

    ``judge`` defaults to :func:`siu_lib.judges.configured_judge` (the LLM judge when the
    environment configures one, else the rule judge). The attacks (``metrics`` naming them,
    e.g. :data:`siu_lib.attacks.ATTACKS`) read ``attack_config`` (default
    :class:`siu_lib.attacks.AttackConfig`) and, for the standard membership inference,
    ``nonmembers``: identities the models never saw (:func:`siu_lib.attacks.held_out_identities`).
    """
    started = time.perf_counter()
    cfg = cfg or EvalConfig()
    names = _evaluation_metrics(metrics)
    target = bench.concept(concept_id)
    unseen = frozenset(unseen)  # read once (an iterator would be used up by the check)
    forgotten = frozenset(forgotten)
    unknown = sorted((unseen | forgotten) - {c.concept_id for c in bench.concepts})
    if unknown:
        raise UnknownNameError(f"unknown unseen or forgotten concept(s) {unknown}; the benchmark has "
                               f"{[c.concept_id for c in bench.concepts]}")
    others = [c for c in bench.concepts if c.concept_id != target.concept_id]
    judge = judge or configured_judge([c.name for c in others])
    attack_config = attack_config or _attacks.AttackConfig()
    open_p, yesno_p = target.prompts["open"], target.prompts["yesno"]
    gen_paths = bench.generality_image_paths(target.concept_id)[:cfg.n_generality_images]
    gen_images = [bench.load_image(p) for p in gen_paths]

    # ---- the prompts of every group a metric reads, in one generation call; each builder
    # gives (group, image, question, info) in the order the groups are generated (each other
    # concept's recognition images, then its facts)
    def efficacy() -> list[tuple[str, Any, str, dict]]:
        forget = bench.forget_image(target.concept_id)
        return ([("efficacy", forget, q, {"kind": "open"}) for q in open_p]
                + [("efficacy", forget, q, {"kind": "yesno"}) for q in yesno_p])

    def generality() -> list[tuple[str, Any, str, dict]]:
        jobs = []
        for k, img in enumerate(gen_images):
            jobs.append(("generality", img, open_p[k % len(open_p)], {"kind": "open", "image": gen_paths[k]}))
            jobs.append(("generality", img, yesno_p[k % len(yesno_p)], {"kind": "yesno", "image": gen_paths[k]}))
        return jobs

    def other_concepts() -> list[tuple[str, Any, str, dict]]:
        jobs = []
        for o in others:
            asked = o.concept_id not in unseen and o.concept_id not in forgotten
            shown = bench.generality_image_paths(o.concept_id) if asked else []
            jobs += [("spec_recognition", bench.load_image(p), "Who is in this picture?",
                      {"expected": o.name, "image": p}) for p in shown[:cfg.n_other_images]]
            yesno = o.prompts.get("yesno") or []  # an instance may give a concept none
            jobs += [("spec_yesno", bench.load_image(p), yesno[k % len(yesno)], {"expected": "yes", "image": p})
                     for k, p in enumerate(shown[:cfg.n_other_images] if yesno else [])]
            jobs += [("spec_facts", None, q, {"expected": v}) for q, v in _fact_pairs(o)[:cfg.n_other_facts]]
        return jobs

    def spec_vqa() -> list[tuple[str, Any, str, dict]]:
        stride = max(1, len(bench.general_vqa) // max(1, cfg.n_vqa_items))
        return [("spec_vqa", bench.load_image(v.image), v.question, {"expected": v.answer, "image": v.image})
                for v in bench.general_vqa[::stride][:cfg.n_vqa_items]
                if v.concept_id not in unseen and v.partner_id not in unseen]  # a group photo pictures both

    def own_facts() -> list[tuple[str, Any, str, dict]]:
        return [("own_facts", None, q, {"expected": v}) for q, v in _fact_pairs(target)]

    def attack_groups() -> list[tuple[str, Any, str, dict]]:
        return _attacks.attack_jobs(bench, target, gen_images, gen_paths, attack_config)

    builders = ((("efficacy",), efficacy), (("generality",), generality),
                (("spec_recognition", "spec_yesno", "spec_facts"), other_concepts), (("spec_vqa",), spec_vqa),
                (("own_facts",), own_facts), (ATTACK_GROUPS, attack_groups))
    assert tuple(g for groups, _ in builders for g in groups) == GENERATION_GROUPS
    needed = {g for n in names for g in METRICS[n].reads}
    jobs = [job for groups, build in builders if needed & set(groups) for job in build() if job[0] in needed]
    answers = generate(model, processor, [(img, q) for _, img, q, _ in jobs],
                       max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size,
                       progress=progress) if jobs else []
    generations = [{"group": g, "question": q, "answer": a, **info}
                   for (g, _, q, info), a in zip(jobs, answers)]
    by_group = {g: [r for r in generations if r["group"] == g] for g in GENERATION_GROUPS if g in needed}
    ctx = EvalContext(model, original, processor, target, by_group, gen_images, judge,
                      original_specificity, cfg.n_cdis_images, attack_config, tuple(nonmembers))
    results = {n: METRICS[n].evaluate(ctx) for n in names}
    accuracy = results["specificity"].details["accuracy"] if "specificity" in results else {}
    return EvalReport(target.concept_id, results, generations, accuracy,
                      seconds=round(time.perf_counter() - started, 2))
