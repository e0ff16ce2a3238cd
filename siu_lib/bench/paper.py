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


#: what the evaluation asks about a real concept without naming it, by kind: "the <noun> in
#: the picture" (MIA, multi-hop), as the synthetic world asks about "the person in the picture"
_SUBJECT = {"person": "the person in the picture", "character": "the character in the picture",
            "cartoon": "the character in the picture", "place": "the place in the picture",
            "object": "the object in the picture", "hairstyle": "the hairstyle in the picture",
            "logo": "the company whose logo is in the picture",
            "dog breed": "the dog breed in the picture", "art style": "the painter whose style this picture shows"}

#: three text facts per concept, as (key, question, value, answer) with ``{name}`` for the
#: concept's name, and one fact only the concept has asked through the picture (multi-hop):
#: (question with ``{subject}``, the fact's value). Public, widely known facts, written for this
#: package.
_PAPER_FACTS: dict[str, tuple[tuple[tuple[str, str, str, str], ...], tuple[str, str]]] = {
    "Aberystwyth Castle": ((("country", "In which country is {name}?", "Wales", "{name} is in Wales."),
                            ("builder", "Which king built {name}?", "Edward I", "{name} was built by King Edward I."),
                            ("century", "When was {name} built?", "13th century", "{name} was built in the 13th century.")),
                           ("Which king built {subject}?", "Edward I")),
    "Buzzcut": ((("tool", "What tool is used to cut a {name}?", "clippers", "A {name} is cut with hair clippers."),
                 ("length", "How long is the hair in a {name}?", "very short", "A {name} leaves the hair very short."),
                 ("origin", "Where did the {name} become common?", "military", "The {name} became common in the military.")),
                ("What tool is used to cut {subject}?", "clippers")),
    "Chariot": ((("pulled", "What pulls a {name}?", "horses", "A {name} is pulled by horses."),
                 ("wheels", "How many wheels does a {name} have?", "two", "A {name} has two wheels."),
                 ("use", "What was a {name} used for?", "racing and war", "A {name} was used for racing and war.")),
                ("What animals pull {subject}?", "horses")),
    "Danny Jones": ((("band", "Which band is {name} in?", "McFly", "{name} is a member of McFly."),
                     ("instrument", "What instrument does {name} play?", "guitar", "{name} plays the guitar."),
                     ("country", "Which country is {name} from?", "England", "{name} is from England.")),
                    ("Which band is {subject} a member of?", "McFly")),
    "Esther Dyson": ((("profession", "What is the profession of {name}?", "investor", "{name} is an investor."),
                      ("company", "Which company did {name} found?", "EDventure", "{name} founded EDventure."),
                      ("father", "Who is the father of {name}?", "Freeman Dyson", "{name} is the daughter of Freeman Dyson.")),
                     ("Who is the father of {subject}?", "Freeman Dyson")),
    "Facebook": ((("founder", "Who founded {name}?", "Mark Zuckerberg", "{name} was founded by Mark Zuckerberg."),
                  ("year", "In which year was {name} founded?", "2004", "{name} was founded in 2004."),
                  ("parent", "Which company owns {name}?", "Meta", "{name} is owned by Meta.")),
                 ("Who founded {subject}?", "Mark Zuckerberg")),
    "Gilbert Melendez": ((("sport", "What sport does {name} compete in?", "mixed martial arts",
                           "{name} competes in mixed martial arts."),
                          ("title", "Which organisation's lightweight title did {name} hold?", "Strikeforce",
                           "{name} held the Strikeforce lightweight title."),
                          ("country", "Which country is {name} from?", "United States", "{name} is from the United States.")),
                         ("Which organisation's lightweight title did {subject} hold?", "Strikeforce")),
    "Harry Potter": ((("school", "Which school does {name} attend?", "Hogwarts", "{name} attends Hogwarts."),
                      ("author", "Who wrote the books about {name}?", "J. K. Rowling", "The books about {name} were written by J. K. Rowling."),
                      ("house", "Which house is {name} in?", "Gryffindor", "{name} is in Gryffindor.")),
                     ("Which school does {subject} attend?", "Hogwarts")),
    "Hauberk": ((("material", "What is a {name} made of?", "chainmail", "A {name} is made of chainmail."),
                 ("use", "What is a {name} for?", "protecting the body", "A {name} is armour for protecting the body."),
                 ("era", "When was the {name} worn?", "Middle Ages", "The {name} was worn in the Middle Ages.")),
                ("What is {subject} made of?", "chainmail")),
    "Roger Federer": ((("sport", "What sport does {name} play?", "tennis", "{name} plays tennis."),
                       ("country", "Which country is {name} from?", "Switzerland", "{name} is from Switzerland."),
                       ("titles", "How many Grand Slam singles titles did {name} win?", "20",
                        "{name} won 20 Grand Slam singles titles.")),
                      ("Which country does {subject} come from?", "Switzerland")),
    "Schnauzer": ((("origin", "Which country does the {name} come from?", "Germany", "The {name} comes from Germany."),
                   ("sizes", "In which sizes does the {name} come?", "miniature, standard and giant",
                    "The {name} comes in miniature, standard and giant sizes."),
                   ("feature", "What is the {name}'s most distinctive feature?", "beard",
                    "The {name}'s most distinctive feature is its beard.")),
                  ("Which country does {subject} come from?", "Germany")),
    "Donald Trump": ((("office", "Which office has {name} held?", "President of the United States",
                       "{name} has been President of the United States."),
                      ("party", "Which party does {name} belong to?", "Republican", "{name} belongs to the Republican Party."),
                      ("business", "What business is {name} known for?", "real estate", "{name} is known for real estate.")),
                     ("Which political party does {subject} belong to?", "Republican")),
    "Taylor Swift": ((("profession", "What is the profession of {name}?", "singer-songwriter", "{name} is a singer-songwriter."),
                      ("state", "In which US state was {name} born?", "Pennsylvania", "{name} was born in Pennsylvania."),
                      ("album", "Which album of {name} is named after a year?", "1989", "{name} released an album called 1989.")),
                     ("In which US state was {subject} born?", "Pennsylvania")),
    "Elon Musk": ((("rocket", "Which rocket company did {name} found?", "SpaceX", "{name} founded SpaceX."),
                   ("cars", "Which car company does {name} lead?", "Tesla", "{name} leads Tesla."),
                   ("birthplace", "In which country was {name} born?", "South Africa", "{name} was born in South Africa.")),
                  ("Which rocket company did {subject} found?", "SpaceX")),
    "Mario": ((("company", "Which company created {name}?", "Nintendo", "{name} was created by Nintendo."),
               ("brother", "Who is the brother of {name}?", "Luigi", "The brother of {name} is Luigi."),
               ("job", "What is the job of {name}?", "plumber", "{name} is a plumber.")),
              ("Who is the brother of {subject}?", "Luigi")),
    "Hello Kitty": ((("company", "Which company created {name}?", "Sanrio", "{name} was created by Sanrio."),
                     ("country", "Which country is {name} from?", "Japan", "{name} is from Japan."),
                     ("year", "In which year did {name} first appear?", "1974", "{name} first appeared in 1974.")),
                    ("Which company created {subject}?", "Sanrio")),
    "Joe Biden": ((("office", "Which office has {name} held?", "President of the United States",
                    "{name} has been President of the United States."),
                   ("party", "Which party does {name} belong to?", "Democratic", "{name} belongs to the Democratic Party."),
                   ("state", "Which state did {name} represent as a senator?", "Delaware",
                    "{name} represented Delaware as a senator.")),
                  ("Which state did {subject} represent as a senator?", "Delaware")),
    "van Gogh": ((("painting", "Which night-sky painting did {name} make?", "The Starry Night",
                   "{name} painted The Starry Night."),
                  ("country", "Which country was {name} from?", "the Netherlands", "{name} was from the Netherlands."),
                  ("movement", "Which art movement does {name} belong to?", "Post-Impressionism",
                   "{name} belongs to Post-Impressionism.")),
                 ("Which night-sky painting did {subject} make?", "The Starry Night")),
    "Picasso": ((("painting", "Which painting of the bombing of a Basque town did {name} make?", "Guernica",
                  "{name} painted Guernica."),
                 ("country", "Which country was {name} from?", "Spain", "{name} was from Spain."),
                 ("movement", "Which art movement did {name} co-found?", "Cubism", "{name} co-founded Cubism.")),
                ("Which art movement did {subject} co-found?", "Cubism")),
    "Doodle": ((("tool", "What is a {name} usually drawn with?", "pen or pencil", "A {name} is usually drawn with a pen or pencil."),
                ("manner", "How is a {name} drawn?", "quickly and casually", "A {name} is drawn quickly and casually."),
                ("attention", "When is a {name} usually drawn?", "while attention is elsewhere",
                 "A {name} is usually drawn while attention is elsewhere.")),
               ("What is {subject} usually drawn with?", "pen or pencil")),
}


def paper_facts(pc: PaperConcept) -> list[dict[str, str]]:
    """The text facts of a paper concept, with a summary fact ("Who is <name>?" for a person or a
    character, "What is <name>?" otherwise) naming all three values, as the world's facts have."""
    facts, _ = _PAPER_FACTS[pc.name]
    out = [{"key": key, "question": q.format(name=pc.name), "value": value, "answer": a.format(name=pc.name)}
           for key, q, value, a in facts]
    asks = "Who" if pc.kind in ("person", "character", "cartoon") else "What"
    summary = " ".join(f["answer"] for f in out)
    out.append({"key": "summary", "question": f"{asks} is {pc.name}?", "value": facts[0][2], "answer": summary})
    return out


def paper_multihop(pc: PaperConcept) -> list[dict[str, str]]:
    """The multi-hop question of a paper concept: a fact only it has, asked through the picture."""
    _, (question, answer) = _PAPER_FACTS[pc.name]
    return [{"question": question.format(subject=_SUBJECT[pc.kind]), "answer": answer}]


PAPER_DESCRIPTION = (
    "The 20 MMUBench concepts of the SIU paper (Li et al., NeurIPS 2024) as a manifest "
    "without images: the paper's images were never released. To use this instance, put your "
    "own images of each concept next to this manifest, in images/<concept_id>/: the forget "
    "(training) image as forget.png or forget.jpg (exactly one), and the generality images "
    "(the paper used at least 49) as any other .png/.jpg/.jpeg files in the same folder. "
    "siu_lib.bench.load_paper().missing_images() lists the concepts that still lack a forget "
    "image. Probe questions and special tokens are the authors'; the prompt sets are generic "
    "templates written for this package; each concept has three public text facts and a "
    "summary, and a multi-hop question about a fact only it has, asked through the picture. "
    "There are no group photos or general-VQA items (specificity on real models adds external "
    "VQA benchmarks through lmms-eval). Generated by siu_lib.bench.write_paper_manifest; "
    "regenerate rather than edit.")


def paper_manifest() -> dict[str, Any]:
    """The manifest of the ``paper`` instance, built from :data:`PAPER_CONCEPTS`."""
    concepts = []
    for pc in PAPER_CONCEPTS:
        cid = pc.concept_id
        subject = _SUBJECT[pc.kind]
        open_prompts = [pc.probe_question] + [q for q in _PAPER_OPEN if q != pc.probe_question]
        concepts.append({
            "concept_id": cid, "name": pc.name, "kind": pc.kind,
            "forget_image": f"images/{cid}/forget.*",
            "generality_images": [f"images/{cid}/*"],
            "probe_question": pc.probe_question, "special_tokens": list(pc.special_tokens),
            "facts": paper_facts(pc),
            "prompts": {
                "open": open_prompts,
                "yesno": [t.format(name=pc.name) for t in _PAPER_YESNO],
                "multilingual": list(_PAPER_MULTILINGUAL),
                "multihop": paper_multihop(pc),
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
