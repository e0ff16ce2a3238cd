"""What an embedded checkpoint knows about its world (:func:`evaluate_pretrained`): recognition
on generality images, text facts, general visual QA, second-language recognition, group photos
and yes/no answers; :func:`pretrain_table` writes it as ``pretrain.csv``."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from ..bench import Benchmark
from ..errors import ConfigError
from ..generate import generate
from ..metrics import answer_contains, reveals_yesno
from ..models import load_model
from ..world import YESNO_QUESTIONS, World
from .checkpoints import pretrain_info


@dataclass
class KnowledgeReport:
    """What a model knows about a world (fractions in [0, 1]).

    Attributes:
        recognition: generality images named correctly, overall.
        recognition_per_concept: the same per concept id.
        facts: text-only fact questions answered with the right value.
        general_vqa: general visual-QA items answered with the right keyword.
        second_language: generality images named correctly when asked in Velish.
        group_photo: group photos where both identities are named.
        yes_to_own: "is <c> in the image?" questions on a generality image of ``c`` answered
            yes (a response that starts with "yes", the yes test of the generality EM).
        yes_to_other: the same questions naming another concept answered yes. A model that
            binds names to faces has ``yes_to_own`` near 1 and ``yes_to_other`` near 0; equal
            rates mean its yes/no answers ignore the face, which is the baseline against
            which the yes/no half of the generality EM should be read.
        yes_to_unknown: the same questions, naming a concept, on pictures of strangers
            (:meth:`siu_lib.world.World.stranger`, faces the model never saw) answered yes:
            the model's yes-bias on a face it does not know, asked about a concept it does
            know. It is not a bound on forgetting: a model that never saw a concept's pictures
            but was asked about it on other people's (the never-seen reference of
            :func:`siu_lib.analysis.never_seen_runs`) learned "no" for that name, and
            answers no on that concept's own pictures too.
        group_left: group photos whose answer names the left identity before the words "on
            the right" (the trained answer is "On the left is A, and on the right is B").
        group_right: group photos whose answer names the right identity after "on the right"
            (an answer without those words gets no credit). The two sides show where
            ``group_photo`` fails: a model that names one person twice loses one side.
        fake_name_reverse: people of the fake-name pool named from a text description of
            their facts ("What is the name of the baker in Ostrik famous for ...?", phrasings
            pre-training never asks: :meth:`siu_lib.world.World.fake_name_reverse_questions`),
            one question per describable fake name: whether the model can say each fake name
            unprompted, as SIU's target (a) asks it to.
    """

    recognition: float
    recognition_per_concept: dict[str, float]
    facts: float
    general_vqa: float
    second_language: float
    group_photo: float
    yes_to_own: float
    yes_to_other: float
    yes_to_unknown: float
    group_left: float
    group_right: float
    fake_name_reverse: float = float("nan")


def split_group_answer(answer: str) -> tuple[str, str]:
    """A group-photo answer cut at its first "on the right" (case-insensitive): the text
    before it (the left person's part) and from it on (the right person's; empty when the
    answer never says "on the right")."""
    k = answer.lower().find("on the right")
    return (answer, "") if k < 0 else (answer[:k], answer[k:])


#: greedy decoding length of :func:`evaluate_pretrained`: long enough for the longest answer the
#: world trains (a group photo's two multi-token names), which a test checks
KNOWLEDGE_MAX_NEW_TOKENS = 48


def evaluate_pretrained(model: Any, processor: Any, bench: Benchmark, world: World,
                        images_per_concept: int | None = None, progress: bool = True,
                        yesno_images: int = 10) -> KnowledgeReport:
    """Measure the embedded model's knowledge on a benchmark instance of its world.

    Recognition is asked with a generic question on up to ``images_per_concept`` generality
    images of each concept (all by default), never seen in pre-training. The yes/no rates use
    the first ``yesno_images`` of them, each asked once with the concept's own name and once
    with another concept's name (the next ones in turn), paraphrases rotating; and as many
    pictures of strangers (stranger ``i * yesno_images + k`` for image ``k`` of concept ``i``),
    each asked with the concept's name and the same paraphrase.
    """
    if len(bench.concepts) != len(world.concepts):
        raise ConfigError("the benchmark and the world do not have the same concepts")
    rec_items, rec_truth, vel_items, yes_own, yes_other, yes_unknown = [], [], [], [], [], []
    n = len(world.concepts)
    for i, c in enumerate(bench.concepts):
        paths = bench.generality_image_paths(c.concept_id)
        n_rec = len(paths) if images_per_concept is None else min(images_per_concept, len(paths))
        for k, p in enumerate(paths[:max(n_rec, yesno_images)]):
            img = bench.load_image(p)  # once, for every question asked about it
            if k < n_rec:
                rec_items.append((img, "Who is in this picture?"))
                vel_items.append((img, world.recognition_questions(c.concept_id, "velish")[k % 3]))
                rec_truth.append(c)
            if k < yesno_images:
                j = k % len(YESNO_QUESTIONS)
                own_question = world.yesno_prompts(c.concept_id)[j]
                yes_own.append((img, own_question))
                yes_unknown.append((world.render_stranger(i * yesno_images + k), own_question))
                if n > 1:  # a one-concept world has no other name to ask about (rate: nan)
                    other = world.concepts[(i + 1 + k % (n - 1)) % n]
                    yes_other.append((img, world.yesno_prompts(other)[j]))
    reverse_names = world.describable_fake_names()
    reverse_items = [(None, world.fake_name_reverse_questions(n, held_out=True)[k % 2])
                     for k, n in enumerate(reverse_names)]
    fact_items, fact_truth = [], []
    for c in world.concepts:
        for key in ("profession", "city", "deed"):
            f = c.fact(key)
            fact_items.append((None, f.question))
            fact_truth.append(f.value)
    vqa = [(bench.load_image(v.image), v.question, v.answer) for v in bench.general_vqa]
    groups = [(bench.load_image(g.image), g) for g in bench.group_photos]

    answers = generate(model, processor, rec_items + vel_items + fact_items
                       + [(i, q) for i, q, _ in vqa]
                       + [(i, "Who are the people in this picture?") for i, _ in groups]
                       + yes_own + yes_other + yes_unknown + reverse_items,
                       max_new_tokens=KNOWLEDGE_MAX_NEW_TOKENS, batch_size=32, progress=progress)
    rest = iter(answers)  # the answers, block by block in the order they were asked

    def take(block: list[Any]) -> list[str]:
        return list(islice(rest, len(block)))

    rec = [answer_contains(a, c.name) for a, c in zip(take(rec_items), rec_truth)]
    vel = [answer_contains(a, c.name) for a, c in zip(take(vel_items), rec_truth)]
    facts = [answer_contains(a, v) for a, v in zip(take(fact_items), fact_truth)]
    vq = [answer_contains(a, exp) for a, (_, _, exp) in zip(take(vqa), vqa)]
    grp, left, right = [], [], []
    for a, (_, g) in zip(take(groups), groups):
        name_l, name_r = bench.concept(g.left).name, bench.concept(g.right).name
        grp.append(answer_contains(a, name_l) and answer_contains(a, name_r))
        part_l, part_r = split_group_answer(a)
        left.append(answer_contains(part_l, name_l))
        right.append(answer_contains(part_r, name_r))
    said_yes_own = [reveals_yesno(a) for a in take(yes_own)]
    said_yes_other = [reveals_yesno(a) for a in take(yes_other)]
    said_yes_unknown = [reveals_yesno(a) for a in take(yes_unknown)]
    reverse = [answer_contains(a, n) for a, n in zip(take(reverse_items), reverse_names)]
    per = {}
    for c in bench.concepts:
        hits = [r for r, t in zip(rec, rec_truth) if t is c]
        per[c.concept_id] = sum(hits) / len(hits)
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    return KnowledgeReport(recognition=mean(rec), recognition_per_concept=per, facts=mean(facts),
                           general_vqa=mean(vq), second_language=mean(vel), group_photo=mean(grp),
                           yes_to_own=mean(said_yes_own), yes_to_other=mean(said_yes_other),
                           yes_to_unknown=mean(said_yes_unknown),
                           group_left=mean(left), group_right=mean(right),
                           fake_name_reverse=mean(reverse))


def pretrain_table(checkpoints: dict[str, str | Path], bench: Benchmark, world: World,
                   images_per_concept: int | None = None, progress: bool = True
                   ) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """The ``pretrain.csv`` table (one row per model size: ``model, params, pretrain_seconds,
    recognition, facts, general_vqa, second_language, group_photo``, then the diagnostic
    ``yes_to_own, yes_to_other, yes_to_unknown, group_left, group_right`` of
    :class:`KnowledgeReport`, the weakest concept's recognition ``recognition_min`` and
    ``fake_name_reverse``; fractions in [0, 1]) and
    the per-concept recognition table (concept x model)."""
    import pandas as pd

    rows, per = [], {}
    for size, folder in checkpoints.items():
        model, processor = load_model(folder)
        info = pretrain_info(folder)
        rep = evaluate_pretrained(model, processor, bench, world, images_per_concept, progress)
        rows.append({"model": size, "params": info["params"],
                     "pretrain_seconds": round(info["pretrain_seconds"], 1),
                     "recognition": rep.recognition, "facts": rep.facts,
                     "general_vqa": rep.general_vqa, "second_language": rep.second_language,
                     "group_photo": rep.group_photo, "yes_to_own": rep.yes_to_own,
                     "yes_to_other": rep.yes_to_other, "yes_to_unknown": rep.yes_to_unknown,
                     "group_left": rep.group_left,
                     "group_right": rep.group_right,
                     "recognition_min": min(rep.recognition_per_concept.values()),
                     "fake_name_reverse": rep.fake_name_reverse})
        per[size] = rep.recognition_per_concept
    per_concept = pd.DataFrame(per)
    per_concept.index.name = "concept_id"
    return pd.DataFrame(rows), per_concept
