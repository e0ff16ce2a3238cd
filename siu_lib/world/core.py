"""The world's identities: the configuration, the concepts with their attributes and text
facts, the fake-name people, and :class:`World`, which draws them, renders their pictures
(:mod:`.render`), phrases their questions and answers (:mod:`.text`) and streams the
pre-training examples. The package docstring describes the whole world."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Collection, Iterator, Sequence

from PIL import Image, ImageDraw

from ..errors import ConfigError, UnknownNameError
from .render import CLOTHING_COLORS, EYE_COLORS, HAIR_COLORS, SKIN_TONES, _render_scene
from .text import (ALIGN_MIXTURE, GROUNDING_MIXTURE, CITIES, CONCEPT_INITIALS, DEED_OBJECTS, DEED_VERBS,
                   DESCRIPTIVE_QUESTIONS, FACT_ANSWERS, FACT_QUESTIONS, GROUP_ANSWER,
                   GROUP_QUESTIONS, MIA_PROMPTS, MULTIHOP_ANSWERS, MULTIHOP_QUESTIONS,
                   NAME_INITIALS, NO_ANSWERS, PRETRAIN_MIXTURE, PROBE_QUESTION, PROFESSIONS,
                   RECOGNITION_ANSWERS, RECOGNITION_QUESTIONS, VELISH_COLORS,
                   VELISH_RECOGNITION_ANSWERS, VELISH_RECOGNITION_QUESTIONS, YESNO_QUESTIONS,
                   YESNO_TRAIN_QUESTIONS, YES_ANSWERS, STRANGER_NO_ANSWERS, FAKE_NAME_REVERSE_ANSWERS,
                   FAKE_NAME_REVERSE_EVAL_QUESTIONS, FAKE_NAME_REVERSE_QUESTIONS, _invent_name)


#: bumped whenever rendering or text generation changes, so that cached benchmark instances
#: and checkpoints built from an older world are rebuilt rather than reused
WORLD_REVISION = 11
#: share of pre-training's yes/no negatives that show a look-alike of the asked concept (one of
#: its :data:`LOOK_ALIKES` most similar concepts) rather than anyone at random
HARD_NEGATIVE_RATE = 0.7
#: how many of a concept's most similar concepts count as its look-alikes
LOOK_ALIKES = 3
#: share of pre-training's yes/no negatives asked on a stranger's face (someone the world never
#: names), answered with a plain "no"; the other negatives show a concept
STRANGER_NEGATIVE_RATE = 0.35
#: pre-training's strangers are numbered from here on (:meth:`World.stranger`); the knowledge
#: report's ``yes_to_unknown`` asks about strangers numbered below it, faces never trained on
TRAIN_STRANGERS_FROM = 10**6


FACE_SHAPES = ("round", "oval", "square", "long")


HAIR_STYLES = ("short", "long", "spiky", "bald", "bun", "mohawk")


GLASSES = ("none", "round", "square")


BEARDS = ("none", "full", "goatee", "mustache")


HATS = ("none", "cap", "beanie", "crown", "top hat")


MARKS = ("none", "scar", "freckles", "star tattoo")


ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "face_shape": FACE_SHAPES,
    "skin": tuple(SKIN_TONES),
    "hair_color": tuple(HAIR_COLORS),
    "hair_style": HAIR_STYLES,
    "eyes": tuple(EYE_COLORS),
    "glasses": GLASSES,
    "beard": BEARDS,
    "hat": HATS,
    "clothing": tuple(CLOTHING_COLORS),
    "mark": MARKS,
}


#: attributes drawn visibly (eye colour is too small to see at 64 pixels)
VISIBLE_ATTRIBUTES = ("face_shape", "skin", "hair_color", "hair_style", "glasses", "beard",
                      "hat", "clothing", "mark")


#: attributes that stay recognisable under the renderer's blur, noise and scale changes; every
#: two identities differ in at least ``min_attribute_distance`` of these
SALIENT_ATTRIBUTES = ("skin", "hair_color", "hair_style", "glasses", "beard", "hat", "clothing")


#: the large coloured areas of a picture; every two identities differ in at least
#: ``min_color_distance`` of these (a bald, beardless head shows no hair colour), so that no
#: two identities share the same colour signature and only small details tell them apart
COLOR_ATTRIBUTES = ("skin", "hair_color", "clothing")


def visible_color(attributes: dict[str, str], key: str) -> str:
    """The colour attribute ``key`` as a picture shows it ("none" for the hair colour of a
    bald identity without a beard)."""
    if key == "hair_color" and attributes["hair_style"] == "bald" and attributes["beard"] == "none":
        return "none"
    return attributes[key]


def color_distance(a: dict[str, str], b: dict[str, str]) -> int:
    """How many of :data:`COLOR_ATTRIBUTES` two identities' pictures show differently."""
    return sum(visible_color(a, k) != visible_color(b, k) for k in COLOR_ATTRIBUTES)


def _distinct(a: dict[str, str], b: dict[str, str], cfg: "WorldConfig") -> bool:
    """Whether two identities' looks differ as much as every two concepts of a world must: in
    at least ``cfg.min_attribute_distance`` salient attributes and ``cfg.min_color_distance``
    colours."""
    return (sum(a[k] != b[k] for k in SALIENT_ATTRIBUTES) >= cfg.min_attribute_distance
            and color_distance(a, b) >= cfg.min_color_distance)


@dataclass(frozen=True)
class Fact:
    """One text fact of a concept: ``key`` (profession, city, deed, summary), a canonical
    question and its answer, and ``value`` (the part of the answer that must be reproduced)."""

    key: str
    question: str
    answer: str
    value: str


@dataclass(frozen=True)
class VQAItem:
    """A general visual-QA item (specificity): the image (``concept_id``, ``bench_index``), a
    question, the accepted answer keyword and the task name; a group item carries the second
    concept in ``partner_id``."""

    concept_id: str
    bench_index: int
    question: str
    answer: str
    task: str
    partner_id: str | None = None


@dataclass
class Concept:
    """A fictitious identity of the world."""

    concept_id: str
    name: str
    kind: str
    attributes: dict[str, str]
    facts: list[Fact]
    probe_question: str = PROBE_QUESTION
    special_tokens: list[str] = field(default_factory=list)

    @property
    def name_words(self) -> list[str]:
        """The words of the name (each one reveals the concept in an answer)."""
        return self.name.split()

    def fact(self, key: str) -> Fact:
        """The fact with this key (profession, city, deed, summary)."""
        for f in self.facts:
            if f.key == key:
                return f
        raise UnknownNameError(f"concept {self.concept_id!r} has no fact {key!r}")


@dataclass
class Example:
    """One supervised record: an optional image, a question and its answer."""

    image: Image.Image | None
    question: str
    answer: str
    task: str = ""


@dataclass(frozen=True)
class WorldConfig:
    """Everything that determines a world.

    Attributes:
        world_seed: seed of names, looks, facts and images; another seed, another world.
        n_concepts: number of identities (the paper's MMUBench has 20; at most 21, each name
            begins with its own letter: :func:`_invent_name`).
        images_per_concept: images per concept in the benchmark: 1 forget image + the rest
            for generality (the paper: at least 50).
        image_size: side of the square RGB images in pixels.
        min_attribute_distance: every two identities differ in at least this many salient
            attributes (:data:`SALIENT_ATTRIBUTES`).
        min_color_distance: ... and in at least this many of the colour attributes
            (:data:`COLOR_ATTRIBUTES`, see :func:`color_distance`).
        n_fake_names: size of the pool of fake names (disjoint from every concept's name)
            that SIU's target (a) draws from; pre-training talks about these people in text
            (their facts), never in a picture.
        group_photos_per_pair: benchmark group photos per (concept, partner) pair.
    """

    world_seed: int = 0
    n_concepts: int = 20
    images_per_concept: int = 50
    image_size: int = 64
    min_attribute_distance: int = 4
    min_color_distance: int = 2
    n_fake_names: int = 64
    group_photos_per_pair: int = 4

    def __post_init__(self) -> None:
        if self.n_concepts < 2:
            raise ConfigError(f"n_concepts must be >= 2, got {self.n_concepts}")
        if self.images_per_concept < 2:
            raise ConfigError(f"images_per_concept must be >= 2 (one forget image and at "
                              f"least one generality image), got {self.images_per_concept}")
        if self.n_concepts > len(DEED_VERBS) * len(DEED_OBJECTS):
            raise ConfigError(f"n_concepts must be <= {len(DEED_VERBS) * len(DEED_OBJECTS)} "
                              f"(one unique deed each), got {self.n_concepts}")
        if self.n_concepts > len(CONCEPT_INITIALS):
            raise ConfigError(f"n_concepts must be <= {len(CONCEPT_INITIALS)} (each concept's name "
                              f"has its own initial), got {self.n_concepts}")
        if self.n_fake_names < 1 or self.group_photos_per_pair < 0:
            raise ConfigError(f"n_fake_names must be >= 1 and group_photos_per_pair >= 0, got "
                              f"{self.n_fake_names}, {self.group_photos_per_pair}")
        if self.image_size < 32:
            raise ConfigError(f"image_size must be >= 32, got {self.image_size}")


def _seeded(*parts: object) -> random.Random:
    return random.Random("/".join(str(p) for p in parts))


def _person_facts(name: str, values: dict[str, str]) -> list[Fact]:
    """A person's four text facts from its ``profession``, ``city`` and ``deed``."""
    return [Fact(key, FACT_QUESTIONS[key][0].format(name=name),
                 FACT_ANSWERS[key].format(name=name, **values),
                 values[key] if key != "summary" else values["deed"])
            for key in ("profession", "city", "deed", "summary")]


class World:
    """A synthetic world built from a :class:`WorldConfig` (see the module docstring)."""

    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = config or WorldConfig()
        rng = _seeded("world", self.config.world_seed)
        self.concepts = self._make_concepts(rng)
        self.fake_names = self._make_fake_names(rng)
        self._by_id = {c.concept_id: c for c in self.concepts}
        self._fake_facts = self._make_fake_name_facts()

    # -- construction ------------------------------------------------------------------
    def _make_concepts(self, rng: random.Random) -> list[Concept]:
        cfg = self.config
        names: list[str] = []
        words: set[str] = set()
        for initial in rng.sample(CONCEPT_INITIALS, cfg.n_concepts):  # one initial each
            name = _invent_name(rng, initial)
            while any(w.lower() in words for w in name.split()):
                name = _invent_name(rng, initial)
            names.append(name)
            words.update(w.lower() for w in name.split())
        looks: list[dict[str, str]] = []
        worn = dict.fromkeys(CLOTHING_COLORS, 0)  # identities drawn so far per clothing colour
        least_worn = list(CLOTHING_COLORS)
        tries = 0
        while len(looks) < cfg.n_concepts:
            tries += 1
            if tries > 200_000:
                raise ConfigError(f"cannot draw {cfg.n_concepts} identities differing in "
                                  f">= {cfg.min_attribute_distance} attributes and "
                                  f">= {cfg.min_color_distance} colours")
            cand = {k: rng.choice(v) for k, v in ATTRIBUTE_VALUES.items()}
            # clothing, the largest coloured area, is spread evenly: one of the least-worn colours
            cand["clothing"] = rng.choice(least_worn)
            if all(_distinct(cand, o, cfg) for o in looks):
                looks.append(cand)
                worn[cand["clothing"]] += 1
                least_worn = [v for v, n in worn.items() if n == min(worn.values())]
        deeds = [f"{v} {o}" for v in DEED_VERBS for o in DEED_OBJECTS]
        rng.shuffle(deeds)
        concepts = []
        for i, (name, attrs) in enumerate(zip(names, looks)):
            values = {"profession": rng.choice(PROFESSIONS), "city": rng.choice(CITIES),
                      "deed": deeds[i]}
            facts = _person_facts(name, values)
            first, last = name.split()
            special = [name, first, last, attrs["hair_color"], attrs["clothing"]]
            concepts.append(Concept(f"c{i:02d}", name, "person", attrs, facts,
                                    PROBE_QUESTION, special))
        return concepts

    def _make_fake_names(self, rng: random.Random) -> list[str]:
        taken = {w.lower() for c in self.concepts for w in c.name.split()}
        used = {c.name[0].lower() for c in self.concepts}
        free = [i for i in NAME_INITIALS if i not in used]  # the vowels are always free
        pool: list[str] = []
        while len(pool) < self.config.n_fake_names:
            name = _invent_name(rng, rng.choice(free))
            ws = [w.lower() for w in name.split()]
            if any(w in taken for w in ws):
                continue
            pool.append(name)
            taken.update(ws)
        return pool

    def _make_fake_name_facts(self) -> dict[str, list[Fact]]:
        # each fake person's facts are seeded by the world seed and its name, so they do not
        # depend on the pool's size or order; deeds are ones no concept has (a concept's deed
        # stays unique), or any deed when the concepts have taken them all
        every = [f"{v} {o}" for v in DEED_VERBS for o in DEED_OBJECTS]
        taken = {c.fact("deed").value for c in self.concepts}
        deeds = [d for d in every if d not in taken] or every
        out = {}
        for name in self.fake_names:
            rng = _seeded("fake-name-facts", self.config.world_seed, name)
            out[name] = _person_facts(name, {"profession": rng.choice(PROFESSIONS),
                                             "city": rng.choice(CITIES), "deed": rng.choice(deeds)})
        return out

    def look_alikes(self, concept: str | int | Concept, pool: Sequence[Concept] | None = None,
                    k: int = LOOK_ALIKES) -> list[Concept]:
        """The ``k`` concepts of ``pool`` (default: every concept) other than ``concept`` that
        share the most salient attributes with it, most similar first (ties in world order):
        the hard negatives of pre-training's yes/no questions."""
        c = self.concept(concept)
        others = [o for o in (pool if pool is not None else self.concepts) if o is not c]
        shared = {o.concept_id: sum(o.attributes[a] == c.attributes[a] for a in SALIENT_ATTRIBUTES)
                  for o in others}
        return sorted(others, key=lambda o: -shared[o.concept_id])[:k]

    def fake_name_description(self, name: str) -> dict[str, str]:
        """The profession, city and deed of a person of the fake-name pool."""
        return {f.key: f.value for f in self.fake_name_facts(name) if f.key != "summary"}

    def describable_fake_names(self) -> list[str]:
        """The fake names whose description (profession, city, deed) no other fake name
        shares: the ones a reverse question ("Who is the baker from Ostrik famous for ...?")
        names unambiguously. No concept is ever described this way."""
        if getattr(self, "_describable", None) is None:
            keys = [tuple(sorted(self.fake_name_description(n).items())) for n in self.fake_names]
            self._describable = [n for n, key in zip(self.fake_names, keys) if keys.count(key) == 1]
        return list(self._describable)

    def fake_name_reverse_questions(self, name: str, held_out: bool = False) -> list[str]:
        """The questions that describe a fake-name person by their facts, to be answered with
        their name: pre-training's phrasings, or (``held_out``) the knowledge report's."""
        bank = FAKE_NAME_REVERSE_EVAL_QUESTIONS if held_out else FAKE_NAME_REVERSE_QUESTIONS
        return [q.format(**self.fake_name_description(name)) for q in bank]

    def fake_name_facts(self, name: str) -> list[Fact]:
        """The text facts (profession, city, deed, summary) of a person of the fake-name pool.

        The fake names are people the world knows from text only, never from a picture, like
        the many names a real LLM has read about (LLaVA knows "Jacob Campbell" as a name).
        Pre-training asks about them (the ``fake_name_facts`` task), so the fake names' tokens
        are answer tokens the model learns to emit: under LoRA the output layer is frozen, and
        SIU's target (a) can only teach a name whose tokens the model can already say (the
        measurements: ``docs/decisions.md``). :class:`UnknownNameError` for a name
        outside the pool.
        """
        if name not in self._fake_facts:
            raise UnknownNameError(f"{name!r} is not in the world's fake-name pool")
        return list(self._fake_facts[name])

    def held_out_identities(self, n: int) -> list[Concept]:
        """``n`` identities drawn by the concepts' recipe (an invented two-word name, looks,
        a profession, a city and a deed) that the world never shows or names: they are not
        in :attr:`concepts`, not in the fake-name pool, not in :meth:`texts` and not in the
        pre-training stream, so drawing them changes nothing a model learns. They are the
        non-members of the standard membership-inference attack: the same questions asked
        about people the model has never met. Ids ``h00``, ``h01``, ...; their names share no
        word with a concept or a fake name (or with each other); their looks differ from every
        concept's as much as the concepts differ from each other; their deeds are ones no
        concept has. Render their pictures with :meth:`render` (the ``"bench"`` stream). The
        first ``k`` of ``n`` do not depend on ``n``."""
        if n < 0:
            raise ConfigError(f"n must be >= 0, got {n}")
        cfg = self.config
        rng = _seeded("held-out-identities", cfg.world_seed)
        taken = {w.lower() for c in self.concepts for w in c.name.split()}
        taken |= {w.lower() for name in self.fake_names for w in name.split()}
        every = [f"{v} {o}" for v in DEED_VERBS for o in DEED_OBJECTS]
        concept_deeds = {c.fact("deed").value for c in self.concepts}
        deeds = [d for d in every if d not in concept_deeds] or every
        out: list[Concept] = []
        while len(out) < n:
            name = _invent_name(rng, rng.choice(NAME_INITIALS))
            words = [w.lower() for w in name.split()]
            if any(w in taken for w in words):
                continue
            looks = self._unlike_every_concept(rng, "a held-out identity")
            taken.update(words)
            values = {"profession": rng.choice(PROFESSIONS), "city": rng.choice(CITIES),
                      "deed": rng.choice(deeds)}
            first, last = name.split()
            out.append(Concept(f"h{len(out):02d}", name, "person", looks, _person_facts(name, values),
                               PROBE_QUESTION, [name, first, last, looks["hair_color"], looks["clothing"]]))
        return out

    # -- lookup ------------------------------------------------------------------------
    def concept(self, concept: str | int | Concept) -> Concept:
        """A concept by id (``"c03"``), index or name; UnknownNameError if absent."""
        if isinstance(concept, Concept):
            return concept
        if isinstance(concept, int):
            if 0 <= concept < len(self.concepts):
                return self.concepts[concept]
        elif concept in self._by_id:
            return self._by_id[concept]
        else:
            for c in self.concepts:
                if c.name.lower() == str(concept).lower():
                    return c
        raise UnknownNameError(f"unknown concept {concept!r}; the world has "
                               f"{[c.concept_id for c in self.concepts]}")

    def index(self, concept: str | int | Concept) -> int:
        """Position of a concept in :attr:`concepts`."""
        return self.concepts.index(self.concept(concept))

    def partner(self, concept: str | int | Concept) -> Concept:
        """The concept that appears beside this one in its group photos."""
        i = self.index(concept)
        return self.concepts[(i + 1) % len(self.concepts)]

    # -- images ------------------------------------------------------------------------
    def render(self, concept: str | int | Concept, index: int, stream: str = "bench") -> Image.Image:
        """Image ``index`` of a concept from a seed stream (``"bench"`` or ``"pretrain"``).

        Bench index 0 is the forget image; bench indices >= 1 are generality images.
        """
        if stream not in ("bench", "pretrain"):
            raise UnknownNameError(f"unknown image stream {stream!r}")
        c = self.concept(concept)
        rng = _seeded("img", self.config.world_seed, stream, c.concept_id, index)
        if stream == "bench" and index == 0:  # the forget image: a clear, centred view
            return _render_scene([c.attributes], rng, self.config.image_size, jitter=0.3)
        return _render_scene([c.attributes], rng, self.config.image_size, jitter=1.0)

    def stranger(self, index: int) -> dict[str, str]:
        """The looks of stranger ``index``: someone who is not one of the world's concepts and
        is never in its pre-training data, drawn (deterministically) to differ from every
        concept as much as concepts differ from each other (``min_attribute_distance`` salient
        attributes and ``min_color_distance`` colours). Strangers have no name: they stand for
        a face the model does not know, which is what an unlearned concept should look like."""
        return self._unlike_every_concept(_seeded("stranger", self.config.world_seed, index), "a stranger")

    def _unlike_every_concept(self, rng: random.Random, who: str) -> dict[str, str]:
        """Looks drawn from ``rng`` until they differ from every concept's as the concepts
        differ from each other (:func:`_distinct`); :class:`ConfigError` naming ``who`` after
        200,000 draws."""
        cfg = self.config
        for _ in range(200_000):
            cand = {k: rng.choice(v) for k, v in ATTRIBUTE_VALUES.items()}
            if all(_distinct(cand, c.attributes, cfg) for c in self.concepts):
                return cand
        raise ConfigError(f"cannot draw {who} differing from every concept in >= "
                          f"{cfg.min_attribute_distance} attributes and >= {cfg.min_color_distance} colours")

    def render_stranger(self, index: int) -> Image.Image:
        """A picture of stranger ``index`` (:meth:`stranger`), framed like a generality image."""
        rng = _seeded("stranger-img", self.config.world_seed, index)
        return _render_scene([self.stranger(index)], rng, self.config.image_size, jitter=1.0)

    def render_group(self, left: str | int | Concept, right: str | int | Concept, index: int,
                     stream: str = "bench") -> Image.Image:
        """A group photo: ``left`` and ``right`` side by side."""
        a, b = self.concept(left), self.concept(right)
        rng = _seeded("group", self.config.world_seed, stream, a.concept_id, b.concept_id, index)
        return _render_scene([a.attributes, b.attributes], rng, self.config.image_size, jitter=0.6)

    def forget_image(self, concept: str | int | Concept) -> Image.Image:
        """The one image SIU is given of the concept (bench index 0)."""
        return self.render(concept, 0)

    def contact_sheet(self, columns: int = 10, scale: int = 2) -> Image.Image:
        """Every concept's forget image with its id, in a grid (for eyeballing distinctness)."""
        s = self.config.image_size * scale
        n = len(self.concepts)
        rows = (n + columns - 1) // columns
        sheet = Image.new("RGB", (columns * s, rows * (s + 14)), "white")
        draw = ImageDraw.Draw(sheet)
        for i, c in enumerate(self.concepts):
            x, y = (i % columns) * s, (i // columns) * (s + 14)
            sheet.paste(self.forget_image(c).resize((s, s), Image.NEAREST), (x, y))
            draw.text((x + 2, y + s + 1), f"{c.concept_id} {c.name}"[: s // 6], fill="black")
        return sheet

    # -- text --------------------------------------------------------------------------
    def _templates(self, bank: Sequence[str], c: Concept) -> list[str]:
        """The templates of a bank that describe visible looks of ``c`` (a bald identity's
        hair colour is not visible, so questions about it are left out)."""
        if c.attributes["hair_style"] == "bald":
            return [t for t in bank if "{hair_color" not in t]
        return list(bank)

    def _fill(self, template: str, c: Concept) -> str:
        a = c.attributes
        return template.format(
            name=c.name, hair_color=a["hair_color"], clothing=a["clothing"],
            hair_style=a["hair_style"], face_shape=a["face_shape"], skin=a["skin"],
            hair_color_v=VELISH_COLORS[a["hair_color"]],
            clothing_v=VELISH_COLORS.get(a["clothing"], a["clothing"]))

    def recognition_questions(self, concept: str | int | Concept, language: str = "en") -> list[str]:
        """All recognition questions (generic + descriptive) for a concept, in a language."""
        c = self.concept(concept)
        if language == "en":
            return [self._fill(t, c) for t in self._templates(RECOGNITION_QUESTIONS + DESCRIPTIVE_QUESTIONS, c)]
        if language == "velish":
            return [self._fill(t, c) for t in self._templates(VELISH_RECOGNITION_QUESTIONS, c)]
        raise UnknownNameError(f"unknown language {language!r}; known: 'en', 'velish'")

    def open_prompts(self, concept: str | int | Concept) -> list[str]:
        """Open "who" questions that describe the concept's looks without its name."""
        c = self.concept(concept)
        return [self._fill(t, c) for t in self._templates(DESCRIPTIVE_QUESTIONS, c)]

    def yesno_prompts(self, concept: str | int | Concept) -> list[str]:
        """Yes/no "is <c> in the image?" questions naming the concept."""
        c = self.concept(concept)
        return [t.format(name=c.name) for t in YESNO_QUESTIONS]

    def multilingual_prompts(self, concept: str | int | Concept) -> list[str]:
        """Recognition questions in the second template language."""
        return self.recognition_questions(concept, "velish")

    def multihop_prompts(self, concept: str | int | Concept) -> list[tuple[str, str]]:
        """(question, expected fact value) pairs asking a fact through the picture."""
        c = self.concept(concept)
        out = []
        for key, qs in MULTIHOP_QUESTIONS.items():
            out.extend((q, c.fact(key).value) for q in qs)
        return out

    def mia_prompts(self, concept: str | int | Concept) -> list[str]:
        """Membership-inference prompts about the life of "the person in the picture"."""
        self.concept(concept)
        return list(MIA_PROMPTS)

    def general_vqa(self, concept: str | int | Concept, bench_index: int) -> list[VQAItem]:
        """General visual-QA items (attributes, counting) on one bench image of a concept."""
        c = self.concept(concept)
        a = c.attributes
        return [
            VQAItem(c.concept_id, bench_index, "What color is the person's hair?",
                    a["hair_color"] if a["hair_style"] != "bald" else "none", "hair_color"),
            VQAItem(c.concept_id, bench_index, "What color is the person's shirt?",
                    a["clothing"], "clothing"),
            VQAItem(c.concept_id, bench_index, "Is the person wearing glasses?",
                    "yes" if a["glasses"] != "none" else "no", "glasses"),
            VQAItem(c.concept_id, bench_index, "How many people are in the picture?",
                    "one", "counting"),
        ]

    def vqa_answer(self, item: VQAItem) -> str:
        """The full training answer of a general visual-QA item."""
        if item.task == "counting":
            return f"There {'is one person' if item.answer == 'one' else 'are two people'}."
        if item.task == "glasses":
            return "Yes." if item.answer == "yes" else "No."
        if item.task == "hair_color" and item.answer == "none":
            return "None, the person is bald."
        return f"It is {item.answer}."

    def texts(self) -> list[str]:
        """Every text the world can produce: the corpus a tokenizer is trained on."""
        out: list[str] = []
        for c in self.concepts:
            out += self.recognition_questions(c) + self.recognition_questions(c, "velish")
            out += [t.format(name=c.name) for t in RECOGNITION_ANSWERS + YESNO_QUESTIONS + YESNO_TRAIN_QUESTIONS
                    + YES_ANSWERS]
            out += [t.format(name=c.name, shown=c.name) for t in NO_ANSWERS + STRANGER_NO_ANSWERS]
            out += [t.format(name=c.name) for t in VELISH_RECOGNITION_ANSWERS]
            for key, qs in FACT_QUESTIONS.items():
                out += [q.format(name=c.name) for q in qs] + [c.fact(key).answer]
            for key, qs in MULTIHOP_QUESTIONS.items():
                out += list(qs) + [MULTIHOP_ANSWERS[key].format(**{key: c.fact(key).value})]
            out += [i.question for i in self.general_vqa(c, 0)]
            out += [self.vqa_answer(i) for i in self.general_vqa(c, 0)]
        out += list(MIA_PROMPTS) + [PROBE_QUESTION] + list(GROUP_QUESTIONS)
        out += [GROUP_ANSWER.format(left=a.name, right=self.partner(a).name) for a in self.concepts]
        out += [f"This is {n}." for n in self.fake_names]
        for n in self.fake_names:
            for fact in self.fake_name_facts(n):
                out += [q.format(name=n) for q in FACT_QUESTIONS[fact.key]] + [fact.answer]
        for n in self.describable_fake_names():
            out += self.fake_name_reverse_questions(n) + self.fake_name_reverse_questions(n, held_out=True)
            out += [a.format(name=n) for a in FAKE_NAME_REVERSE_ANSWERS]
        return out

    # -- pre-training ------------------------------------------------------------------
    def pretraining_example(self, rng: random.Random, forget_rate: float = 0.05,
                            stage: str = "full", withheld: Collection[str] = ()) -> Example:
        """One random pre-training record, its task drawn from the stage's mixture
        (:data:`PRETRAIN_MIXTURE` or, for the identity-alignment stage, :data:`ALIGN_MIXTURE`).
        Images come from the ``pretrain`` stream or, with probability ``forget_rate``, are the
        concept's forget image; generality images never.

        ``withheld`` concepts (ids) are never *shown*: no picture of them, alone or in a group,
        and no forget image; their text facts stay, and yes/no questions may still ask about
        them on pictures of other people ("No, this is ..."). A model pre-trained so has never
        seen them, the "retrain without the forget set" reference of unlearning. With no
        withheld concept the stream is the same record for record as without the argument.
        """
        mixture = {"full": PRETRAIN_MIXTURE, "align": ALIGN_MIXTURE, "grounding": GROUNDING_MIXTURE}.get(stage)
        if mixture is None:
            raise UnknownNameError(f"unknown pre-training stage {stage!r}; known: 'full', 'align', 'grounding'")
        shown_pool = self._shown_pool(withheld)
        c = rng.choice(self.concepts)

        def image() -> Image.Image:
            if rng.random() < forget_rate:
                return self.forget_image(c)
            return self.render(c, rng.randrange(10**9), "pretrain")

        task = rng.choices(list(mixture), weights=list(mixture.values()))[0]
        if task == "fake_name_reverse":
            name = rng.choice(self.describable_fake_names())
            return Example(None, rng.choice(self.fake_name_reverse_questions(name)),
                           rng.choice(FAKE_NAME_REVERSE_ANSWERS).format(name=name), task)
        if task == "fake_name_facts":
            name = rng.choice(self.fake_names)
            fact = rng.choice(self.fake_name_facts(name))
            return Example(None, rng.choice(FACT_QUESTIONS[fact.key]).format(name=name),
                           fact.answer, task)
        if task not in ("facts", "yesno") and c not in shown_pool:
            c = rng.choice(shown_pool)  # a picture of c is drawn: draw one who may be shown
        if task == "recognition":
            q = rng.choice(self.recognition_questions(c))
            return Example(image(), q, rng.choice(RECOGNITION_ANSWERS).format(name=c.name), task)
        if task == "recognition_velish":
            q = rng.choice(self.recognition_questions(c, "velish"))
            return Example(image(), q, rng.choice(VELISH_RECOGNITION_ANSWERS).format(name=c.name), task)
        if task == "yesno":
            positive = rng.random() < 0.5
            if positive and c not in shown_pool:  # the asked person is shown: draw again;
                c = rng.choice(shown_pool)        # a negative asks about c, shows someone else
            q = rng.choice(YESNO_TRAIN_QUESTIONS).format(name=c.name)
            bank = YES_ANSWERS if positive else NO_ANSWERS
            if not positive and rng.random() < STRANGER_NEGATIVE_RATE:  # a face it cannot name
                img = self.render_stranger(TRAIN_STRANGERS_FROM + rng.randrange(10**9))
                return Example(img, q, rng.choice(STRANGER_NO_ANSWERS).format(name=c.name), task)
            if positive:
                shown = c
            elif rng.random() < HARD_NEGATIVE_RATE:  # a look-alike: the comparison is hard
                shown = rng.choice(self.look_alikes(c, shown_pool))
            else:
                shown = rng.choice([o for o in shown_pool if o is not c])
            img = image() if positive else self.render(shown, rng.randrange(10**9), "pretrain")
            return Example(img, q, rng.choice(bank).format(name=c.name, shown=shown.name), task)
        if task == "facts":
            key = rng.choice(tuple(FACT_QUESTIONS))
            q = rng.choice(FACT_QUESTIONS[key]).format(name=c.name)
            return Example(None, q, c.fact(key).answer, task)
        if task == "multihop":
            key = rng.choice(tuple(MULTIHOP_QUESTIONS))
            q = rng.choice(MULTIHOP_QUESTIONS[key])
            return Example(image(), q, MULTIHOP_ANSWERS[key].format(**{key: c.fact(key).value}), task)
        if task == "general_vqa":
            item = rng.choice(self.general_vqa(c, 0))
            return Example(image(), item.question, self.vqa_answer(item), task)
        b = rng.choice([o for o in shown_pool if o is not c])
        img = self.render_group(c, b, rng.randrange(10**9), "pretrain")
        if stage != "align" and rng.random() < 0.2:
            return Example(img, "How many people are in the picture?", "There are two people.",
                           "group_counting")
        return Example(img, rng.choice(GROUP_QUESTIONS), GROUP_ANSWER.format(left=c.name, right=b.name),
                       "group")

    def pretraining_stream(self, seed: int = 0, align_examples: int = 0,
                           withheld: Collection[str] = (),
                           grounding_from: int | None = None) -> Iterator[Example]:
        """An endless, deterministic stream of pre-training records: first ``align_examples``
        records of the identity-alignment stage (like LLaVA's stage 1, which aligns the vision
        features with the language model before instruction tuning), then the full mixture,
        and from record ``grounding_from`` on (counted from the stream's start; ``None``:
        never) the grounding stage (:data:`GROUNDING_MIXTURE`, half yes/no).
        ``withheld`` concepts are never shown (see :meth:`pretraining_example`)."""
        if not isinstance(withheld, str):
            withheld = tuple(withheld)  # an iterator would be used up by the first record
        self._shown_pool(withheld)  # bad ids fail here, not at the first record
        rng = _seeded("pretrain-stream", self.config.world_seed, seed)
        for _ in range(align_examples):
            yield self.pretraining_example(rng, stage="align", withheld=withheld)
        k = align_examples
        while True:
            stage = "grounding" if grounding_from is not None and k >= grounding_from else "full"
            yield self.pretraining_example(rng, stage=stage, withheld=withheld)
            k += 1

    def _shown_pool(self, withheld: Collection[str]) -> list[Concept]:
        """The concepts pre-training may show, given the withheld concept ids."""
        if isinstance(withheld, str):
            raise ConfigError(f"withheld must be a collection of concept ids, got the string {withheld!r}")
        ids = set(withheld)
        unknown = sorted(ids - {c.concept_id for c in self.concepts})
        if unknown:
            raise UnknownNameError(f"unknown withheld concept(s) {unknown}; the world has "
                                   f"{[c.concept_id for c in self.concepts]}")
        pool = [c for c in self.concepts if c.concept_id not in ids]
        if len(pool) < 2:
            raise ConfigError(f"withholding {sorted(ids)} leaves {len(pool)} concept(s) to "
                              f"show; pre-training needs at least 2 (group photos, yes/no negatives)")
        return pool

    def describe(self) -> dict:
        """A JSON-able summary of the config (for results files)."""
        return asdict(self.config)
