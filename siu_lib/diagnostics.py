"""What an unlearned model's answers say beyond its metrics: the EM split by prompt kind
(:func:`em_split_columns`), what the open and yes/no answers name instead of the concept
(:func:`open_answer_kinds`, :func:`yesno_answer_kinds`), whether forgetting follows the picture
or the question (:func:`question_consistency`), and whether a run learned its own training
records (:func:`training_fit`)."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import pandas as pd

from .bench import Benchmark
from .errors import ConfigError, UnknownNameError
from .evaluate import EvalReport
from .generate import generate
from .metrics import PROMPT_KINDS, names_as_shown, reveals_as, reveals_open, reveals_yesno, reveals_yesno_answer


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
YESNO_ANSWER_KINDS = ("no", "no_names_concept", "yes_names_concept", "yes_names_other", "yes_names_nobody")


def yesno_answer_kinds(generations: Sequence[dict[str, Any]], concept_name: str,
                       other_names: Sequence[str], group: str = "generality") -> dict[str, float]:
    """How a run's answers to the yes/no prompts ("is <c> in this image?") are made up, in % of
    the answers of ``group`` (an :class:`EvalReport`'s generation records, as saved in a run's
    JSON under ``evaluation.generations``).

    - ``no``: the answer does not start with yes and does not name the person shown as the
      concept (it does not reveal the concept: this column is the yes/no half of the EM);
    - ``no_names_concept``: a "no" that names the person shown as the concept ("No, this is
      <c>.", :func:`siu_lib.metrics.names_as_shown`): it reveals the concept;
    - ``yes_names_concept``: it says yes and names the concept (a word of its name, as the
      open-prompt test of the EM);
    - ``yes_names_other``: it says yes but names someone else only (a word of one of
      ``other_names``, e.g. of the run's fake name, so a garbled "Liagouk Brat" still counts):
      the yes contradicts the identity the model names;
    - ``yes_names_nobody``: any other yes ("Yes.", garbled text).

    The five add up to 100 (nan each when the group has no yes/no answer).
    """
    others = [n for n in other_names if n and n != concept_name]

    def kind_of(a: str) -> str:
        if not reveals_yesno(a):
            return "no_names_concept" if names_as_shown(a, concept_name) else "no"
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
    - ``names_fake``: names the run's ``fake_name`` (SIU's intended answer); 0 when there is
      none (the original model, a baseline, the never-seen reference): no answer can name it;
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

    return _answer_shares(generations, group, "open", OPEN_ANSWER_KINDS, kind_of)


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
      (names the concept) for (a) and :func:`siu_lib.metrics.reveals_yesno_answer` (says yes,
      or names the person shown as the concept) for (b);
    - ``learned``: (a) the answer names the record's fake name (its ``mask_span``, matched by
      word as the EM matches names) and not the concept; (b) it does not reveal the concept.

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
        reveal = reveals_yesno_answer(answer, concept_name)
        return {"reveals": reveal, "learned": not reveal}
    raise ConfigError(f"record_fit takes records of target (a) or (b), got {record.target!r}")
