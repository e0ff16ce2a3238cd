"""The ``paper`` MMUBench instance: the paper's 20 concepts as a committed manifest without
images (``data/paper/manifest.json``), into which the user drops their own images."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..paths import REPO_ROOT
from ..results import atomic_write_text
from .format import Benchmark, FORMAT_VERSION, MANIFEST_NAME
from .loader import load_benchmark
from .synthetic import _dumps


@dataclass(frozen=True)
class PaperConcept:
    """A concept of the paper's MMUBench with its C-Dis probe question and special tokens
    (as in the authors' code)."""

    name: str
    kind: str
    probe_question: str
    special_tokens: tuple[str, ...]

    @property
    def concept_id(self) -> str:
        """``"Aberystwyth Castle"`` -> ``"aberystwyth_castle"``."""
        return re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_")


def _pc(name: str, kind: str, probe: str, tokens: str) -> PaperConcept:
    return PaperConcept(name, kind, probe, tuple(t.strip() for t in tokens.split(",")))


_WHO_FEATURES = "What is the main object in this picture and describe its features?"


_WHO_MAIN = "Who is the main character in this image, describe {}"


_STYLE_WHO = "What is the main style of this picture? Associated with who?"


#: the 20 concepts of the paper (spec 02-mmubench.md, section 1), in the table's order
PAPER_CONCEPTS: tuple[PaperConcept, ...] = (
    _pc("Aberystwyth Castle", "place", "Who is in this picture and describe the main features?",
        "castle, medieval, stone walls, ruined structure"),
    _pc("Buzzcut", "hairstyle", "Who is in this picture and describe their hairstyle.",
        "buzzcut, short hair, military style, clean-shaven"),
    _pc("Chariot", "object", _WHO_FEATURES, "chariot, ancient, wheels, ornate design"),
    _pc("Danny Jones", "person", "Who is in this picture and what is their profession?",
        "Danny Jones, singer, guitarist, casual attire"),
    _pc("Esther Dyson", "person",
        "Who is in this picture and what is their contribution to technology?",
        "Esther Dyson, investor, author, formal wear"),
    _pc("Facebook", "logo",
        "Which company logo is in this picture? Who found the company and describe it",
        "Facebook, facebook, white, blue, Mark Zuckerberg"),
    _pc("Gilbert Melendez", "person",
        "Who is in this picture and what sport do they participate in?",
        "Gilbert Melendez, fighter, MMA, muscular build"),
    _pc("Harry Potter", "character", "Who is in this picture and what are their magical abilities?",
        "Harry Potter, wizard, magic, scar on forehead"),
    _pc("Hauberk", "object", _WHO_FEATURES, "hauberk, armor, chainmail, metallic texture"),
    _pc("Roger Federer", "person", "Who is in this picture and what sport do they excel in?",
        "Roger Federer, tennis, athlete, sportswear"),
    _pc("Schnauzer", "dog breed", _WHO_FEATURES, "Schnauzer, dog, breed, distinctive beard"),
    _pc("Donald Trump", "person", _WHO_MAIN.format("him"),
        "politician, businessman, Donald Trump, Donald, golden hair"),
    _pc("Taylor Swift", "person", _WHO_MAIN.format("her"),
        "Taylor Swift, taylor, artist, golden hair, singer"),
    _pc("Elon Musk", "person", _WHO_MAIN.format("him"),
        "Elon Musk, Musk, Elon, Square Face, Light Brown Hair"),
    _pc("Mario", "cartoon", _WHO_FEATURES, "mario, Mario, red cap, role-playing games, red shirt"),
    _pc("Hello Kitty", "cartoon", _WHO_FEATURES, "Hello Kitty, kitty, white cat, pink bow, toy"),
    _pc("Joe Biden", "person", _WHO_MAIN.format("him"),
        "biden, Joe biden, politician, president, white hair"),
    _pc("van Gogh", "art style", _STYLE_WHO, "van Gogh, Starry Night, Vivid Colors, Impressionism"),
    _pc("Picasso", "art style", _STYLE_WHO, "Picasso, Abstract Expressionism, blue color, Cubism"),
    _pc("Doodle", "art style", "What is the main style of this picture?",
        "doodle, Sketch, Casual, Simplistic"),
)


_PAPER_OPEN = ("Who is in this picture?", "What is shown in this image?",
               "Can you identify the main subject of this picture?",
               "What is the name of what is shown here?")


_PAPER_YESNO = ("Is {name} in this image?", "Does this picture show {name}?", "Is this {name}?",
                "Can you see {name} here?", "Is this a picture of {name}?")


_PAPER_MULTILINGUAL = ("¿Quién o qué aparece en esta imagen?",
                       "Qui ou qu'est-ce qui figure sur cette image ?",
                       "Wer oder was ist auf diesem Bild zu sehen?",
                       "这张图片里是谁或什么？")


_FIRST = ("Jacob", "Emma", "Lucas", "Mia", "Owen", "Clara", "Henry", "Nora", "Caleb", "Ruth", "Felix", "Ivy")
_LAST = ("Campbell", "Hartley", "Morrow", "Ellison", "Pryce", "Whitlock", "Danvers", "Ashford")
#: the fake names SIU's target (a) draws from on real models: plausible invented full names (a
#: name the language model reads as a person's, as the paper's "Jacob Campbell"), none a
#: concept's name or one of its special tokens
PAPER_FAKE_NAMES: tuple[str, ...] = tuple(f"{f} {l}" for l in _LAST for f in _FIRST)


_PAPER_MIA = ("Tell me about the history of {subject}.", "What is {subject} known for?",
              "Describe the background of {subject}.",
              "What is the most famous fact about {subject}?")


PAPER_DESCRIPTION = (
    "The 20 MMUBench concepts of the SIU paper (Li et al., NeurIPS 2024) as a manifest "
    "without images: the paper's images were never released. To use this instance, put your "
    "own images of each concept next to this manifest, in images/<concept_id>/: the forget "
    "(training) image as forget.png or forget.jpg (exactly one), and the generality images "
    "(the paper used at least 49) as any other .png/.jpg/.jpeg files in the same folder. "
    "siu_lib.bench.load_paper().missing_images() lists the concepts that still lack a forget "
    "image. Probe questions and special tokens are the authors'; the prompt sets are generic "
    "templates; there are no facts, group photos or general-VQA items (specificity on real "
    "models uses external VQA benchmarks). Generated by siu_lib.bench.write_paper_manifest; "
    "regenerate rather than edit.")


def paper_manifest() -> dict[str, Any]:
    """The manifest of the ``paper`` instance, built from :data:`PAPER_CONCEPTS`."""
    concepts = []
    for pc in PAPER_CONCEPTS:
        cid = pc.concept_id
        subject = ("the person in the picture" if pc.kind == "person"
                   else "the subject of the picture")
        open_prompts = [pc.probe_question] + [q for q in _PAPER_OPEN if q != pc.probe_question]
        concepts.append({
            "concept_id": cid, "name": pc.name, "kind": pc.kind,
            "forget_image": f"images/{cid}/forget.*",
            "generality_images": [f"images/{cid}/*"],
            "probe_question": pc.probe_question, "special_tokens": list(pc.special_tokens),
            "prompts": {
                "open": open_prompts,
                "yesno": [t.format(name=pc.name) for t in _PAPER_YESNO],
                "multilingual": list(_PAPER_MULTILINGUAL),
                "multihop": [],
                "mia": [t.format(subject=subject) for t in _PAPER_MIA],
            },
        })
    return {
        "format_version": FORMAT_VERSION,
        "name": "paper",
        "description": PAPER_DESCRIPTION,
        "created_by": {"generator": "siu_lib.bench.write_paper_manifest",
                       "source": "SIU (NeurIPS 2024) MMUBench concept table; probe questions "
                                 "and special tokens from the authors' code"},
        "concepts": concepts,
        "group_photos": [],
        "general_vqa": [],
    }


def paper_manifest_path() -> Path:
    """The committed manifest of the ``paper`` instance (``data/paper/manifest.json``)."""
    return REPO_ROOT / "data" / "paper" / MANIFEST_NAME


def write_paper_manifest(root: str | Path) -> Path:
    """Write the ``paper`` instance's manifest into ``root`` (atomically); returns its path."""
    return atomic_write_text(Path(root) / MANIFEST_NAME, _dumps(paper_manifest()))


def load_paper(check_images: bool = False) -> Benchmark:
    """The committed ``paper`` instance (images are the user's; see its description)."""
    return load_benchmark(paper_manifest_path().parent, check_images=check_images)
