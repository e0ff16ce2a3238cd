"""Evaluate one unlearned model on one concept of an MMUBench instance: every metric of
``03-metrics-attacks.md``, with the generations behind them.

All generation is batched greedy decoding through :func:`siu_lib.generate.generate`
(``max_new_tokens`` = :attr:`EvalConfig.max_new_tokens`). The prompts:

* **efficacy**: the forget image with every open and yes/no prompt of the concept;
* **generality** (EM, G-Eval, fluency, diversity): ``n_generality_images`` generality images,
  each with one open and one yes/no prompt (the prompt banks are cycled);
* **C-Dis**: the first ``n_cdis_images`` of those images with the probe question;
* **specificity**: recognition of the other concepts (``n_other_images`` generality images
  each), ``n_vqa_items`` general visual-QA items, and the other concepts' text facts;
* **factual retention**: the target's own text facts, asked without an image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Collection

from .bench import Benchmark
from .errors import UnknownNameError
from .generate import generate
from .judges import Judge, RuleJudge
from .metrics import (MetricResult, c_dis, diversity, exact_match_forgetting, factual_retention,
                      fluency, g_eval, specificity)
from .train import name_token_ids

#: the order of Table 1's columns
TABLE1_METRICS = ("efficacy", "generality_em", "generality_geval", "generality_cdis",
                  "specificity", "fluency", "diversity", "factual_retention")


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

    def row(self) -> dict[str, float]:
        """The Table 1 values (``TABLE1_METRICS``) of this report."""
        return {k: self.metrics[k].value for k in TABLE1_METRICS if k in self.metrics}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (per-example values and generations included)."""
        return {"concept_id": self.concept_id, "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
                "generations": self.generations, "specificity_accuracy": self.specificity_accuracy}


def _fact_pairs(concept: Any) -> list[tuple[str, str]]:
    return [(f.question, f.value) for f in concept.facts if f.key != "summary"]


def evaluate_unlearning(model: Any, original: Any, processor: Any, bench: Benchmark, concept_id: str,
                        cfg: EvalConfig | None = None, judge: Judge | None = None,
                        original_specificity: dict[str, float] | None = None,
                        progress: bool = False, unseen: Collection[str] = ()) -> EvalReport:
    """Every metric of ``model`` (Mθ) against ``original`` (M0) on one concept.

    ``original_specificity`` (task -> accuracy in %) is the original model's specificity on
    the same items, for the ratio; pass ``evaluate_unlearning(original, original, ...)``'s
    ``specificity_accuracy`` (computed with the same ``unseen``).

    ``unseen``: other concepts whose pictures are left out of the specificity items (the
    recognition items and the general visual-QA items that picture them; their text facts
    stay in): those a never-seen reference model was never shown
    (:func:`siu_lib.experiments.never_seen_runs`), which no model could be asked to keep.
    """
    cfg = cfg or EvalConfig()
    target = bench.concept(concept_id)
    unseen = frozenset(unseen)  # read once (an iterator would be used up by the check)
    unknown = sorted(unseen - {c.concept_id for c in bench.concepts})
    if unknown:
        raise UnknownNameError(f"unknown unseen concept(s) {unknown}; the benchmark has "
                               f"{[c.concept_id for c in bench.concepts]}")
    others = [c for c in bench.concepts if c.concept_id != target.concept_id]
    judge = judge or RuleJudge([c.name for c in others])
    open_p, yesno_p = target.prompts["open"], target.prompts["yesno"]

    # ---- the prompts, in one generation call
    jobs: list[tuple[str, Any, str, dict]] = []  # (group, image, question, info)
    forget = bench.forget_image(target.concept_id)
    jobs += [("efficacy", forget, q, {"kind": "open"}) for q in open_p]
    jobs += [("efficacy", forget, q, {"kind": "yesno"}) for q in yesno_p]
    gen_paths = bench.generality_image_paths(target.concept_id)[:cfg.n_generality_images]
    gen_images = [bench.load_image(p) for p in gen_paths]
    for k, img in enumerate(gen_images):
        jobs.append(("generality", img, open_p[k % len(open_p)], {"kind": "open", "image": gen_paths[k]}))
        jobs.append(("generality", img, yesno_p[k % len(yesno_p)], {"kind": "yesno", "image": gen_paths[k]}))
    for o in others:
        shown = [] if o.concept_id in unseen else bench.generality_image_paths(o.concept_id)
        for p in shown[:cfg.n_other_images]:
            jobs.append(("spec_recognition", bench.load_image(p), "Who is in this picture?",
                         {"expected": o.name, "image": p}))
        for q, v in _fact_pairs(o)[:cfg.n_other_facts]:
            jobs.append(("spec_facts", None, q, {"expected": v}))
    stride = max(1, len(bench.general_vqa) // max(1, cfg.n_vqa_items))
    for v in bench.general_vqa[::stride][:cfg.n_vqa_items]:
        if v.concept_id in unseen or v.partner_id in unseen:  # a group photo pictures both
            continue
        jobs.append(("spec_vqa", bench.load_image(v.image), v.question, {"expected": v.answer, "image": v.image}))
    for q, v in _fact_pairs(target):
        jobs.append(("own_facts", None, q, {"expected": v}))
    answers = generate(model, processor, [(img, q) for _, img, q, _ in jobs],
                       max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size, progress=progress)
    generations = [{"group": g, "question": q, "answer": a, **info}
                   for (g, _, q, info), a in zip(jobs, answers)]

    def pick(group: str) -> list[dict[str, Any]]:
        return [r for r in generations if r["group"] == group]

    metrics: dict[str, MetricResult] = {}
    eff = pick("efficacy")
    metrics["efficacy"] = exact_match_forgetting([r["answer"] for r in eff], [r["kind"] for r in eff], target.name)
    gen = pick("generality")
    metrics["generality_em"] = exact_match_forgetting([r["answer"] for r in gen], [r["kind"] for r in gen],
                                                      target.name)
    gen_open = [r for r in gen if r["kind"] == "open"]
    metrics["generality_geval"] = g_eval([r["answer"] for r in gen_open], target, judge)
    metrics["generality_cdis"] = c_dis(model, original, processor, gen_images[:cfg.n_cdis_images],
                                       target.probe_question, target.special_tokens)
    correct = {
        "recognition": [r["expected"].lower() in r["answer"].lower() for r in pick("spec_recognition")],
        "general_vqa": [r["expected"].lower() in r["answer"].lower() for r in pick("spec_vqa")],
        "facts": [r["expected"].lower() in r["answer"].lower() for r in pick("spec_facts")],
    }
    metrics["specificity"] = specificity(correct, original_specificity)
    accuracy = metrics["specificity"].details["accuracy"]
    gen_items = [(img, r["question"], r["answer"]) for img, r in zip(gen_images, gen_open)]
    metrics["fluency"] = fluency(original, processor, gen_items,
                                 name_token_ids(processor.tokenizer, target.name))
    metrics["diversity"] = diversity([r["answer"] for r in gen_open])
    own = pick("own_facts")
    metrics["factual_retention"] = factual_retention([r["answer"] for r in own], [r["expected"] for r in own])
    for name, m in metrics.items():
        m.name = name
    return EvalReport(target.concept_id, metrics, generations, accuracy)
