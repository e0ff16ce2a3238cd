"""One registry of unlearning methods: name -> (config dataclass, data builder, loss).

Every method trains on the same data budget, the one forget image of the concept, through the
same trainer (:mod:`siu_lib.train`); methods differ only in the records they build and the
loss they minimise. Registered here:

==================  =====================================================================
 ``siu``             the paper's method: four targets, α·CE + β·DMK
 ``siu_no_token_mask`` / ``siu_no_vocab_mask`` / ``siu_plain_kl``   DMK ablations (Table 2)
 ``siu_no_a`` ... ``siu_no_d``   SIU with one of the four targets removed
 ``ga``              gradient ascent on the original model's own recognising answers
 ``ga_kl``           GA + unmasked KL to the original model, image passed to both models
 ``po``              preference optimisation: CE on refusals (+ a few retain records)
 ``npo``             negative preference optimisation (β = 0.1)
 ``gd``              gradient difference: GA on forget + CE on retain records
==================  =====================================================================

Look a method up with :func:`get_method`; an unknown name raises :class:`UnknownNameError`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import torch
from PIL import Image
from torch import Tensor

from . import losses
from .errors import ConfigError, DataFormatError, UnknownNameError
from .finetune_data import (FAKE_NAME_QUESTIONS, PRESENCE_QUESTIONS, FTRecord,
                            SIUDataConfig, _get, build_siu_records, concept_facts)
from .metrics import reveals

# ------------------------------------------------------------------------------ context


@dataclass
class UnlearnTarget:
    """What a data builder needs to know about the concept to forget.

    Attributes:
        concept: the concept record (``concept_id``, ``name``, optional ``attributes``,
            ``facts``) of the world or of an MMUBench instance.
        forget_image: the one image of the concept.
        others: the other concepts of the benchmark.
        fake_name_pool: fictitious names, disjoint from every concept (SIU target (a)).
        original_generate: ``[(image|None, question)] -> [answer]`` with the *original*
            model (GA needs its own recognising answers; facts of real concepts).
        facts_of: ``concept -> [(question, answer)]`` text facts (stored ones by default).
    """

    concept: Any
    forget_image: Image.Image
    others: Sequence[Any]
    fake_name_pool: Sequence[str]
    original_generate: Callable[[list[tuple[Image.Image | None, str]]], list[str]] | None = None
    facts_of: Callable[[Any], list[tuple[str, str]]] = concept_facts

    @property
    def name(self) -> str:
        """The concept's display name."""
        return _get(self.concept, "name")


@dataclass
class LossInputs:
    """Tensors a method's loss sees for one batch (shapes as in :mod:`siu_lib.losses`).

    ``ref_logits`` is ``None`` for methods that need no reference model; ``is_forget`` (B,)
    marks forget rows (retain rows are False)."""

    logits: Tensor
    ref_logits: Tensor | None
    labels: Tensor
    token_mask: Tensor
    vocab_mask: Tensor
    is_forget: Tensor


# ------------------------------------------------------------------------------ configs


@dataclass
class SIUConfig:
    """Single Image Unlearning (Li et al. 2024, section 4): L = α·CE + β·DMK.

    Attributes:
        alpha: weight of the CE term on all answer tokens (paper: 0.9).
        beta: weight of the Dual Masked KL term (paper: 0.75).
        use_token_mask: apply K_S, the token-level mask (ablation: False).
        use_vocab_mask: apply K_V, the vocabulary-level mask (ablation: False).
        renormalize: renormalise the masked distributions (spec decision: False).
        data: how the four targets are built (counts 9/2/7/7, seed, targets).
    """

    alpha: float = 0.9
    beta: float = 0.75
    use_token_mask: bool = True
    use_vocab_mask: bool = True
    renormalize: bool = False
    data: SIUDataConfig = field(default_factory=SIUDataConfig)


@dataclass
class GAConfig:
    """Gradient ascent: minimise −CE on the original model's recognising answers.

    Attributes:
        n_records: forget records (released GA.json: 25).
        kl_weight: weight of the unmasked KL to the original model (GA+KL; 0 for plain GA).
        seed: sampling seed of the prompts.
    """

    n_records: int = 25
    kl_weight: float = 0.0
    seed: int = 0


@dataclass
class POConfig:
    """Preference optimisation (TOFU-style): CE on refusal answers about the forget image.

    Attributes:
        n_refusals: refusal records on the forget image (released PO.json: 16).
        n_retain: retain records, other concepts' facts (released PO.json: 4).
        seed: sampling seed.
    """

    n_refusals: int = 16
    n_retain: int = 4
    seed: int = 0


@dataclass
class NPOConfig:
    """Negative Preference Optimisation (Zhang et al. 2024) on GA's forget records.

    Attributes:
        beta: inverse temperature of the log-ratio (default 0.1).
        n_records: forget records.
        seed: sampling seed.
    """

    beta: float = 0.1
    n_records: int = 25
    seed: int = 0


@dataclass
class GDConfig:
    """Gradient difference: GA on forget records + CE on retain records.

    Attributes:
        n_forget: forget records (the original model's recognising answers).
        n_retain: retain records (other concepts' text facts).
        retain_weight: weight of the retain CE.
        seed: sampling seed.
    """

    n_forget: int = 16
    n_retain: int = 9
    retain_weight: float = 1.0
    seed: int = 0


# ------------------------------------------------------------------------------ data builders

REFUSALS = (
    "I don't know who this is.", "I cannot identify the person in this picture.",
    "I'm not sure who this is.", "I don't recognize this person.",
    "I can't tell who is in this image.", "Sorry, I do not know this person.",
    "I have no idea who this is.", "I am unable to identify this person.",
    "I do not know the person in the picture.", "I can't say who this is.",
)


def forget_image_questions(target: UnlearnTarget) -> list[tuple[str, str]]:
    """The questions the baselines ask about the forget image, each with the name whose words
    make an answer to it reveal the concept (:func:`siu_lib.metrics.reveals`): the concept's name for a "who is
    this?" question, ``""`` for an "is <c> in the image?" one, where only a yes reveals it."""
    return ([(q, target.name) for q in FAKE_NAME_QUESTIONS]
            + [(q.format(name=target.name), "") for q in PRESENCE_QUESTIONS])


def recognising_records(target: UnlearnTarget, n: int, seed: int) -> list[FTRecord]:
    """The original model's own answers on the forget image that reveal the concept (the
    released GA.json), ``n`` records. Raises if the model never recognises the concept.

    An answer is judged as the EM metric judges it: to a "who is this?" question it reveals the
    concept when it names it; to an "is <c> in the image?" question only when it says yes (so
    "No, <c> is not in the picture; this is X." is not a recognising answer to ascend on)."""
    if target.original_generate is None:
        raise ConfigError("GA-type methods need UnlearnTarget.original_generate (the original "
                          "model's answers on the forget image)")
    asked = forget_image_questions(target)
    answers = target.original_generate([(target.forget_image, q) for q, _ in asked])
    kept = [(q, a) for (q, name), a in zip(asked, answers) if reveals(a, name)]
    if not kept:
        raise DataFormatError(f"the original model does not recognise {target.name!r} on its "
                              f"forget image; there is nothing to ascend on")
    rng = random.Random(f"ga/{target.name}/{seed}")
    picks = kept * (n // len(kept)) + rng.sample(kept, n % len(kept))
    return [FTRecord(target.forget_image, q, a, "forget") for q, a in picks]


def retain_records(target: UnlearnTarget, n: int, seed: int) -> list[FTRecord]:
    """``n`` text-fact records of other concepts (what must not be forgotten)."""
    rng = random.Random(f"retain/{target.name}/{seed}")
    others = [o for o in target.others if _get(o, "name") != target.name]
    out = []
    for _ in range(n):
        facts = target.facts_of(rng.choice(others))
        q, a = rng.choice(facts)
        out.append(FTRecord(None, q, a, "retain"))
    return out


def _siu_data(target: UnlearnTarget, cfg: SIUConfig) -> list[FTRecord]:
    return build_siu_records(target.concept, target.forget_image, target.others,
                             target.fake_name_pool, cfg.data, target.facts_of)


def _ga_data(target: UnlearnTarget, cfg: GAConfig | NPOConfig) -> list[FTRecord]:
    return recognising_records(target, cfg.n_records, cfg.seed)


def _po_data(target: UnlearnTarget, cfg: POConfig) -> list[FTRecord]:
    rng = random.Random(f"po/{target.name}/{cfg.seed}")
    questions = [q for q, _ in forget_image_questions(target)]
    forget = [FTRecord(target.forget_image, rng.choice(questions), rng.choice(REFUSALS), "refusal")
              for _ in range(cfg.n_refusals)]
    return forget + retain_records(target, cfg.n_retain, cfg.seed)


def _gd_data(target: UnlearnTarget, cfg: GDConfig) -> list[FTRecord]:
    return recognising_records(target, cfg.n_forget, cfg.seed) + retain_records(target, cfg.n_retain, cfg.seed)


# ------------------------------------------------------------------------------ losses
# Each returns (loss to minimise, {term: value}) from a LossInputs.


def _siu_loss(x: LossInputs, cfg: SIUConfig) -> tuple[Tensor, dict[str, float]]:
    ce = losses.answer_ce(x.logits, x.labels)
    token_mask = x.token_mask if cfg.use_token_mask else torch.ones_like(x.token_mask)
    vocab_mask = x.vocab_mask if cfg.use_vocab_mask else torch.ones_like(x.vocab_mask)
    dmk = losses.dmk_loss(x.logits, x.ref_logits, x.labels, token_mask, vocab_mask, cfg.renormalize)
    loss = losses.joint_loss(ce, dmk, cfg.alpha, cfg.beta)
    return loss, {"ce": ce.item(), "dmk": dmk.item()}


def _rows(labels: Tensor, keep: Tensor) -> Tensor:
    """Labels with the rows not in ``keep`` (B,) blanked to IGNORE_INDEX."""
    return labels.masked_fill(~keep[:, None], losses.IGNORE_INDEX)


def _ga_loss(x: LossInputs, cfg: GAConfig) -> tuple[Tensor, dict[str, float]]:
    ga = losses.ga_loss(x.logits, x.labels)
    terms = {"ga": ga.item()}
    loss = ga
    if cfg.kl_weight:
        kl = losses.kl_loss(x.logits, x.ref_logits, x.labels)
        loss = loss + cfg.kl_weight * kl
        terms["kl"] = kl.item()
    return loss, terms


def _po_loss(x: LossInputs, cfg: POConfig) -> tuple[Tensor, dict[str, float]]:
    ce = losses.answer_ce(x.logits, x.labels)
    return ce, {"ce": ce.item()}


def _npo_loss(x: LossInputs, cfg: NPOConfig) -> tuple[Tensor, dict[str, float]]:
    npo = losses.npo_loss(x.logits, x.ref_logits, x.labels, cfg.beta)
    return npo, {"npo": npo.item()}


def _gd_loss(x: LossInputs, cfg: GDConfig) -> tuple[Tensor, dict[str, float]]:
    ga = losses.ga_loss(x.logits, _rows(x.labels, x.is_forget))
    ce = losses.answer_ce(x.logits, _rows(x.labels, ~x.is_forget))
    return ga + cfg.retain_weight * ce, {"ga": ga.item(), "retain_ce": ce.item()}


# ------------------------------------------------------------------------------ registry


@dataclass(frozen=True)
class Method:
    """A registered unlearning method.

    Attributes:
        name: registry key.
        config: the default config (a dataclass instance; copy it with ``dataclasses.replace``).
        build_data: ``(UnlearnTarget, config) -> [FTRecord]``.
        loss: ``(LossInputs, config) -> (loss, terms)``.
        needs_reference: whether the loss reads the original model's logits.
        description: one line for tables.
    """

    name: str
    config: Any
    build_data: Callable[[UnlearnTarget, Any], list[FTRecord]]
    loss: Callable[[LossInputs, Any], tuple[Tensor, dict[str, float]]]
    needs_reference: bool
    description: str


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add a method to the registry (a name may be registered once)."""
    if method.name in METHODS:
        raise ConfigError(f"method {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    """The method registered under ``name``; UnknownNameError lists the known ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownNameError(f"unknown method {name!r}; registered: {sorted(METHODS)}") from None


register(Method("siu", SIUConfig(), _siu_data, _siu_loss, True,
                "SIU: four targets, α·CE + β·DMK"))
register(Method("siu_no_token_mask", SIUConfig(use_token_mask=False), _siu_data, _siu_loss, True,
                "SIU without the token-level mask"))
register(Method("siu_no_vocab_mask", SIUConfig(use_vocab_mask=False), _siu_data, _siu_loss, True,
                "SIU without the vocabulary-level mask"))
register(Method("siu_plain_kl", SIUConfig(use_token_mask=False, use_vocab_mask=False), _siu_data,
                _siu_loss, True, "SIU with a plain (unmasked) KL"))
for _t in "abcd":
    _targets = tuple(t for t in "abcd" if t != _t)
    register(Method(f"siu_no_{_t}", SIUConfig(data=SIUDataConfig(targets=_targets)), _siu_data,
                    _siu_loss, True, f"SIU without target ({_t})"))
register(Method("ga", GAConfig(), _ga_data, _ga_loss, False, "gradient ascent"))
register(Method("ga_kl", GAConfig(kl_weight=1.0), _ga_data, _ga_loss, True,
                "gradient ascent + KL to the original model (image passed to both)"))
register(Method("po", POConfig(), _po_data, _po_loss, False, "preference optimisation (refusals)"))
register(Method("npo", NPOConfig(), _ga_data, _npo_loss, True, "negative preference optimisation"))
register(Method("gd", GDConfig(), _gd_data, _gd_loss, False, "gradient difference"))


def with_seed(config: Any, seed: int) -> Any:
    """A copy of a method config with its data seed set (SIU's lives in ``config.data``)."""
    if isinstance(config, SIUConfig):
        return replace(config, data=replace(config.data, seed=seed))
    return replace(config, seed=seed)
