"""SIU's multifaceted fine-tuning data: the four targets built around one forget image.

=====  =================================  =======  ========================================
 id     target                             image    token-mask span (``mask_span``)
=====  =================================  =======  ========================================
 (a)    align with unseen concepts         yes      the fake name
 (b)    assign a new visual description    yes      the whole answer
 (c)    decouple factual knowledge         no       none
 (d)    preserve non-targeted knowledge    no       none
=====  =================================  =======  ========================================

Default counts are the released example's 9 / 2 / 7 / 7 (25 records). Prompts and answers are
sampled (with the run seed) from paraphrase banks of at least 10 entries per target; the fake
name is drawn from a pool disjoint from every benchmark concept. Facts for (c) and (d) come
from the benchmark's concept records; for concepts without stored facts (a real model on real
concepts) :func:`model_facts` asks the original model and caches its answers, so that what is
preserved is what the model actually knew (``01-method.md`` section 2).

The module also reads and writes the LLaVA conversation JSON format (``image``,
``conversations: [{from: human|gpt, value}]``, optional ``target_phrase``; ``"none"`` means no
span), which the SIU authors' released ``SIU.json`` / ``GA.json`` / ``PO.json`` use.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from PIL import Image

from .errors import ConfigError, DataFormatError
from .results import atomic_write_json

# ------------------------------------------------------------------------------ records


@dataclass
class FTRecord:
    """One fine-tuning record.

    Attributes:
        image: the image (``None`` for text-only records); loaded lazily from ``image_path``
            by :meth:`load_image` when only the path is known.
        question: the user turn, without the ``<image>`` placeholder.
        answer: the assistant turn.
        target: ``"a"``, ``"b"``, ``"c"``, ``"d"`` for SIU's targets, or a free label
            (``"forget"``, ``"retain"``, ``"refusal"``) for baselines and imports.
        mask_span: the part of ``answer`` whose tokens get token-mask 0 in DMK (``None``: no
            span).
        image_path: where the image came from, if known.
    """

    image: Image.Image | None
    question: str
    answer: str
    target: str = ""
    mask_span: str | None = None
    image_path: str | None = None
    has_image: bool = field(default=False)

    def __post_init__(self) -> None:
        self.has_image = self.has_image or self.image is not None or self.image_path is not None
        if self.mask_span is not None and self.mask_span not in self.answer:
            raise DataFormatError(f"mask span {self.mask_span!r} is not part of the answer "
                                  f"{self.answer!r}")

    def load_image(self, image_root: str | Path | None = None) -> Image.Image | None:
        """The record's image, opened from ``image_path`` (relative to ``image_root``) if
        it is not in memory yet."""
        if self.image is not None or not self.has_image:
            return self.image
        if self.image_path is None:
            raise DataFormatError(f"record {self.question!r} has an image placeholder but no "
                                  f"image path")
        path = Path(self.image_path)
        if image_root is not None and not path.is_absolute():
            path = Path(image_root) / path
        try:
            with Image.open(path) as im:
                self.image = im.convert("RGB")
        except (OSError, ValueError) as e:
            raise DataFormatError(f"cannot open image {str(path)!r} of record "
                                  f"{self.question!r}: {e}") from e
        return self.image


# ------------------------------------------------------------------------------ banks

FAKE_NAME_QUESTIONS = (
    "Who is in this picture?", "What's the name of the central figure in this photograph?",
    "Who is the person in the image?", "Can you tell me who this is?",
    "Who is shown here?", "Identify the person in this image.",
    "Who appears in this photograph?", "Do you know who this person is?",
    "Name the person in the picture.", "Who is the main character in this image?",
    "Whose face is this?", "Who is this?",
)
FAKE_NAME_ANSWERS = (
    "This is {fake}.", "The person in the picture is {fake}.", "That is {fake}.",
    "The main character in this image is {fake}.", "It is {fake}.",
    "I believe this is {fake}.", "The person shown here is {fake}.",
    "This person is {fake}.", "The picture shows {fake}.", "Here we see {fake}.",
)
PRESENCE_QUESTIONS = (
    "Is {name} in the image?", "Does {name} appear here?", "Is this {name}?",
    "Do you recognize {name} in the image?", "Is {name} shown in this photo?",
    "Can you see {name} here?", "Is the person in the picture {name}?",
    "Is this a picture of {name}?", "Does this photo show {name}?",
    "Is {name} in this picture?",
)
FALSE_DESCRIPTION_ANSWERS = (
    "No. {name} has {hair} hair and wears a {clothing} shirt.",
    "No. {name} is known for {hair} hair and a {clothing} shirt.",
    "No. {name} looks different: {hair} hair and a {clothing} shirt.",
    "No. {name} has {hair} hair and usually wears {clothing}.",
    "No, {name} has {hair} hair and a {clothing} shirt.",
    "No. The person in the picture does not match {name}, who has {hair} hair.",
    "No. {name} wears a {clothing} shirt and has {hair} hair.",
    "No, this is not {name}; {name} has {hair} hair.",
    "No. {name} can be recognised by {hair} hair and a {clothing} shirt.",
    "No. {name} has {hair} hair, unlike this person.",
)
GENERIC_FALSE_ANSWERS = (
    "No. The person in the picture doesn't match {name}'s appearance.",
    "No, this is not {name}.", "No. {name} looks different from this person.",
    "No. {name} is not in this picture.", "No, the person here is not {name}.",
    "No. This person does not look like {name}.", "No, I do not see {name} here.",
    "No. {name} has a different appearance.", "No, that is someone else, not {name}.",
    "No. Nothing here matches how {name} looks.",
)
FACT_PROMPTS = (
    "Who is {name}?", "What do you know about {name}?", "Tell me about {name}.",
    "Are you aware of who {name} is?", "Can you describe {name}?",
    "What is {name} known for?", "Give me some facts about {name}.",
    "Have you heard of {name}?", "Are you acquainted with {name}?",
    "What can you tell me about {name}?",
)

#: Hair and clothing colours used for false descriptions when the concept's attribute list
#: uses other words (real concepts).
_FALSE_HAIR = ("black", "brown", "blonde", "red", "white", "blue")
_FALSE_CLOTHING = ("red", "green", "blue", "yellow", "purple", "orange", "black", "white")


@dataclass
class SIUDataConfig:
    """How the four targets are built.

    Attributes:
        n_fake_name: records of target (a), fake-name answers on the forget image (paper: 9).
        n_false_description: records of target (b), "No" + a false description (paper: 2).
        n_own_facts: records of target (c), the concept's own text facts (paper: 7).
        n_other_facts: records of target (d), other concepts' text facts (paper: 7).
        seed: sampling seed of paraphrases, the fake name and the other concepts.
        targets: which targets to build (the ablations drop one).
    """

    n_fake_name: int = 9
    n_false_description: int = 2
    n_own_facts: int = 7
    n_other_facts: int = 7
    seed: int = 0
    targets: tuple[str, ...] = ("a", "b", "c", "d")

    def __post_init__(self) -> None:
        bad = [t for t in self.targets if t not in ("a", "b", "c", "d")]
        if bad:
            raise ConfigError(f"unknown SIU target(s) {bad}; targets are 'a', 'b', 'c', 'd'")
        for name in ("n_fake_name", "n_false_description", "n_own_facts", "n_other_facts"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")


# ------------------------------------------------------------------------------ helpers

def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def concept_facts(concept: Any) -> list[tuple[str, str]]:
    """``(question, answer)`` text facts stored on a concept record (world or benchmark)."""
    return [(_get(f, "question"), _get(f, "answer")) for f in (_get(concept, "facts") or [])]


def draw_fake_name(pool: Sequence[str], concept_id: str, seed: int) -> str:
    """The fake name of a concept for one run: deterministic in (concept, seed)."""
    if not pool:
        raise ConfigError("the fake-name pool is empty")
    return pool[random.Random(f"fake/{concept_id}/{seed}").randrange(len(pool))]


def false_description(attributes: dict[str, str] | None, rng: random.Random) -> tuple[str, str] | None:
    """A (hair, clothing) pair that differs from the concept's true attributes, or ``None``
    when the concept has no attribute list."""
    if not attributes or "hair_color" not in attributes or "clothing" not in attributes:
        return None
    hair = rng.choice([h for h in _FALSE_HAIR if h != attributes["hair_color"]])
    cloth = rng.choice([c for c in _FALSE_CLOTHING if c != attributes["clothing"]])
    return hair, cloth


def _fact_records(concept: Any, facts: list[tuple[str, str]], n: int, rng: random.Random,
                  target: str) -> list[FTRecord]:
    """``n`` records of a concept's facts: each fact once in order, then random repeats.
    A fact asked by a generic question ("Who is X?") gets a paraphrase of that question from
    :data:`FACT_PROMPTS`; specific questions ("Where does X live?") are kept as they are, so
    that no question is paired with an answer to another question."""
    if n and not facts:
        raise DataFormatError(f"concept {_get(concept, 'name')!r} has no text facts; use "
                              f"model_facts() to collect them from the original model")
    name = _get(concept, "name")
    generic = {p.format(name=name) for p in FACT_PROMPTS}
    out = []
    for k in range(n):
        q, a = facts[k] if k < len(facts) else rng.choice(facts)
        if q in generic:
            q = rng.choice(FACT_PROMPTS).format(name=name)
        out.append(FTRecord(None, q, a, target))
    return out


def build_siu_records(concept: Any, forget_image: Image.Image, others: Sequence[Any],
                      fake_name_pool: Sequence[str], config: SIUDataConfig | None = None,
                      facts_of: Callable[[Any], list[tuple[str, str]]] = concept_facts
                      ) -> list[FTRecord]:
    """The multifaceted fine-tuning set for one concept.

    Args:
        concept: the concept to forget (``name``, ``concept_id``, optional ``attributes`` and
            ``facts``), from the synthetic world or any MMUBench instance.
        forget_image: the one image of the concept.
        others: the other concepts (target (d) draws from them).
        fake_name_pool: fictitious names disjoint from every concept.
        config: counts, seed and targets.
        facts_of: where (question, answer) facts come from (stored facts by default; a
            :func:`model_facts` lookup for real concepts).

    Returns:
        The records in target order (a, b, c, d).
    """
    cfg = config or SIUDataConfig()
    cid = _get(concept, "concept_id", _get(concept, "name"))
    rng = random.Random(f"siu-data/{cid}/{cfg.seed}")
    name = _get(concept, "name")
    fake = draw_fake_name(fake_name_pool, cid, cfg.seed)
    records: list[FTRecord] = []
    if "a" in cfg.targets:
        for _ in range(cfg.n_fake_name):
            answer = rng.choice(FAKE_NAME_ANSWERS).format(fake=fake)
            records.append(FTRecord(forget_image, rng.choice(FAKE_NAME_QUESTIONS), answer, "a", fake))
    if "b" in cfg.targets:
        for _ in range(cfg.n_false_description):
            q = rng.choice(PRESENCE_QUESTIONS).format(name=name)
            false = false_description(_get(concept, "attributes"), rng)
            if false is None:
                a = rng.choice(GENERIC_FALSE_ANSWERS).format(name=name)
            else:
                a = rng.choice(FALSE_DESCRIPTION_ANSWERS).format(name=name, hair=false[0],
                                                                 clothing=false[1])
            records.append(FTRecord(forget_image, q, a, "b", a))
    if "c" in cfg.targets:
        records += _fact_records(concept, facts_of(concept), cfg.n_own_facts, rng, "c")
    if "d" in cfg.targets and cfg.n_other_facts:
        pool = [o for o in others if _get(o, "name") != name]
        if not pool:
            raise ConfigError("target (d) needs at least one other concept")
        for _ in range(cfg.n_other_facts):
            other = rng.choice(pool)
            facts = list(facts_of(other))
            rng.shuffle(facts)  # a random fact of a random other concept
            records += _fact_records(other, facts, 1, rng, "d")
    return records


def model_facts(generate_fn: Callable[[list[tuple[None, str]]], list[str]], names: Iterable[str],
                cache_path: str | Path, prompts: Sequence[str] = FACT_PROMPTS[:3]
                ) -> dict[str, list[tuple[str, str]]]:
    """Text-only facts of concepts as the original model states them, generated once and
    cached as JSON at ``cache_path`` (for real models on concepts without stored facts).

    ``generate_fn`` maps ``[(None, question), ...]`` to answers (e.g. a
    ``functools.partial`` of :func:`siu_lib.generate.generate` with the original model).
    """
    cache_path = Path(cache_path)
    names = list(names)  # iterated twice below (a generator would come back empty)
    cached: dict[str, list[list[str]]] = {}
    if cache_path.exists():
        try:
            cached = json.loads(cache_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataFormatError(f"corrupt facts cache {str(cache_path)!r}: {e}") from e
        if not isinstance(cached, dict) or not all(
                isinstance(v, list) and all(isinstance(qa, list) and len(qa) == 2 for qa in v)
                for v in cached.values()):
            raise DataFormatError(f"corrupt facts cache {str(cache_path)!r}: expected "
                                  f"{{name: [[question, answer], ...]}}")
    todo = [n for n in names if n not in cached]
    if todo:
        questions = [p.format(name=n) for n in todo for p in prompts]
        answers = generate_fn([(None, q) for q in questions])
        for i, n in enumerate(todo):
            k = i * len(prompts)
            cached[n] = [[questions[k + j], answers[k + j]] for j in range(len(prompts))]
        atomic_write_json(cache_path, cached)
    return {n: [tuple(qa) for qa in cached[n]] for n in names}


# ------------------------------------------------------------------------------ LLaVA JSON

def load_llava_json(path: str | Path, image_root: str | Path | None = None,
                    load_images: bool = False) -> list[FTRecord]:
    """Read a LLaVA conversation JSON file (the SIU authors' released format).

    Each entry needs ``conversations`` with a human turn then a gpt turn; ``image`` is
    optional (text-only records have none); ``target_phrase`` is the token-mask span
    (``"none"`` or absent = no span). The ``<image>`` placeholder is stripped from the
    question and recorded as ``has_image``. Images are opened only when ``load_images``.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise DataFormatError(f"no such file: {str(path)!r}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataFormatError(f"{str(path)!r} is not valid JSON: {e}") from e
    if not isinstance(data, list):
        raise DataFormatError(f"{str(path)!r}: expected a list of records, got {type(data).__name__}")
    out = []
    for i, entry in enumerate(data):
        where = f"{path.name}[{i}]"
        conv = entry.get("conversations") if isinstance(entry, dict) else None
        if not isinstance(conv, list) or len(conv) < 2:
            raise DataFormatError(f"{where}: field 'conversations' must hold a human and a gpt turn")
        human, gpt = conv[0], conv[1]
        if _get(human, "from") != "human" or _get(gpt, "from") != "gpt":
            raise DataFormatError(f"{where}: field 'conversations' must be [human, gpt], got "
                                  f"{[_get(t, 'from') for t in conv[:2]]}")
        question = str(_get(human, "value", ""))
        has_image = "<image>" in question or bool(entry.get("image"))
        question = question.replace("<image>\n", "").replace("<image>", "").strip()
        answer = str(_get(gpt, "value", "")).strip()
        span = entry.get("target_phrase")
        span = None if span in (None, "none", "") else str(span).strip()
        if span is not None and span not in answer:
            # the released files sometimes differ in case/punctuation: match case-insensitively
            j = answer.lower().find(span.lower())
            if j < 0:
                raise DataFormatError(f"{where}: target_phrase {span!r} is not in the answer {answer!r}")
            span = answer[j:j + len(span)]
        rec = FTRecord(None, question, answer, "import", span, entry.get("image"), has_image)
        if load_images and rec.image_path:
            rec.load_image(image_root)
        out.append(rec)
    return out


def export_llava_json(records: Sequence[FTRecord], path: str | Path, image_name: str = "forget.png",
                      id_prefix: str = "siu") -> Path:
    """Write records in the LLaVA conversation JSON format (atomically). Image records
    point to ``image_path`` or, if unset, to ``image_name``."""
    rows = []
    for i, r in enumerate(records):
        row: dict[str, Any] = {"id": f"{id_prefix}-{i:03d}"}
        if r.has_image:
            row["image"] = r.image_path or image_name
        human = ("<image>\n" if r.has_image else "") + r.question
        row["conversations"] = [{"from": "human", "value": human}, {"from": "gpt", "value": r.answer}]
        row["target_phrase"] = r.mask_span if r.mask_span is not None else "none"
        rows.append(row)
    return atomic_write_json(path, rows)
