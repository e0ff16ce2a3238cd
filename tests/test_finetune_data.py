"""Tests of siu_lib.finetune_data: SIU's four fine-tuning targets built around one forget
image (counts, fake name, false description, own and other facts, masks), the paraphrase
banks, the facts cache of ``model_facts``, and the LLaVA conversation JSON importer/exporter,
checked against the SIU authors' released SIU.json / GA.json / PO.json (read in place, never
copied) and against malformed files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from siu_lib.errors import ConfigError, DataFormatError, SIUError
from siu_lib.finetune_data import (
    FACT_PROMPTS, FAKE_NAME_ANSWERS, FAKE_NAME_QUESTIONS, FALSE_DESCRIPTION_ANSWERS,
    GENERIC_FALSE_ANSWERS, PRESENCE_QUESTIONS, FTRecord, SIUDataConfig, build_siu_records,
    concept_facts, export_llava_json, load_llava_json, model_facts,
)
from siu_lib.world import World, WorldConfig

#: the authors' released files, in the shared folder next to the project checkout (../shared)
SUPPLEMENT = Path(__file__).resolve().parents[2] / "shared" / "external" / "siu-supplement"

TARGETS = ("a", "b", "c", "d")


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldConfig(n_concepts=4, images_per_concept=3, image_size=32))


@pytest.fixture(scope="module")
def forget(world: World) -> Image.Image:
    return world.forget_image(world.concepts[0])


def build(world: World, image: Image.Image, index: int = 0, **cfg) -> list[FTRecord]:
    return build_siu_records(world.concepts[index], image, world.concepts, world.fake_names,
                             SIUDataConfig(**cfg))


def by_target(records: list[FTRecord]) -> dict[str, list[FTRecord]]:
    return {t: [r for r in records if r.target == t] for t in TARGETS}


def key(records: list[FTRecord]) -> list[tuple]:
    return [(r.question, r.answer, r.target, r.mask_span, r.has_image) for r in records]


def generic_questions(name: str) -> set[str]:
    return {p.format(name=name) for p in FACT_PROMPTS}


def require_supplement() -> Path:
    if not SUPPLEMENT.is_dir():
        pytest.skip(f"the released SIU supplement is not at {SUPPLEMENT}")
    return SUPPLEMENT


# ------------------------------------------------------------------------- build_siu_records

def test_default_counts_and_target_order(world: World, forget: Image.Image) -> None:
    records = build(world, forget)
    assert len(records) == 25
    assert [r.target for r in records] == ["a"] * 9 + ["b"] * 2 + ["c"] * 7 + ["d"] * 7


def test_target_a_fake_name_records(world: World, forget: Image.Image) -> None:
    concept = world.concepts[0]
    recs = by_target(build(world, forget))["a"]
    fakes = {r.mask_span for r in recs}
    assert len(fakes) == 1, "one fake name per concept per run"
    fake = fakes.pop()
    assert fake in world.fake_names
    concept_words = {w.lower() for c in world.concepts for w in c.name.split()}
    assert not {w.lower() for w in fake.split()} & concept_words
    for r in recs:
        assert r.image is forget and r.has_image
        assert r.mask_span in r.answer
        assert r.question in FAKE_NAME_QUESTIONS
        assert r.answer in {a.format(fake=fake) for a in FAKE_NAME_ANSWERS}
        assert not any(w in r.answer for w in concept.name.split())
    # paraphrases are sampled, not one sentence repeated
    assert len({r.question for r in recs}) > 1


def test_same_seed_same_records_and_seed_changes_the_fake_name(world: World,
                                                               forget: Image.Image) -> None:
    first, again = build(world, forget, seed=5), build(world, forget, seed=5)
    assert key(first) == key(again)
    assert all(a.image is b.image for a, b in zip(first, again))
    fakes = {}
    for seed in range(40):
        fakes[seed] = by_target(build(world, forget, seed=seed, targets=("a",)))["a"][0].mask_span
        assert fakes[seed] in world.fake_names
    assert len(set(fakes.values())) >= 2, "another seed should be able to give another fake name"
    s1, s2 = next((s, t) for s in fakes for t in fakes if fakes[s] != fakes[t])
    assert key(build(world, forget, seed=s1)) != key(build(world, forget, seed=s2))


def test_target_b_false_description(world: World) -> None:
    seen_templates = 0
    for index, concept in enumerate(world.concepts):
        image = world.forget_image(concept)
        true_hair, true_cloth = concept.attributes["hair_color"], concept.attributes["clothing"]
        for seed in range(4):
            recs = by_target(build(world, image, index, seed=seed, n_false_description=6))["b"]
            assert len(recs) == 6
            for r in recs:
                assert r.image is image and r.has_image
                assert concept.name in r.question
                assert r.answer.startswith("No")
                assert r.mask_span == r.answer
                hair = re.findall(r"(\w+) hair", r.answer)
                cloth = re.findall(r"(\w+) shirt", r.answer) + re.findall(r"usually wears (\w+)",
                                                                          r.answer)
                assert hair, f"no hair colour described in {r.answer!r}"
                assert true_hair not in hair, r.answer
                assert true_cloth not in cloth, r.answer
                seen_templates += bool(cloth)
    assert seen_templates > 0


def test_target_c_own_facts_text_only(world: World, forget: Image.Image) -> None:
    concept = world.concepts[0]
    recs = by_target(build(world, forget))["c"]
    own = {f.answer: f.question for f in concept.facts}
    assert len(recs) == 7
    assert {r.answer for r in recs} == set(own), "every fact at least once"
    for r in recs:
        assert r.image is None and not r.has_image and r.mask_span is None
        assert r.answer in own
        assert concept.name in r.question


def test_target_d_other_concepts_facts_only(world: World, forget: Image.Image) -> None:
    concept = world.concepts[0]
    others = {f.answer for c in world.concepts[1:] for f in c.facts}
    for seed in range(3):
        recs = by_target(build(world, forget, seed=seed))["d"]
        assert len(recs) == 7
        for r in recs:
            assert r.image is None and not r.has_image and r.mask_span is None
            assert r.answer in others
            assert not any(w in r.question + r.answer for w in concept.name.split())


def test_questions_keep_their_own_answers(world: World) -> None:
    """A specific question stays with its answer; only generic ones are paraphrased."""
    for index, concept in enumerate(world.concepts):
        recs = build(world, world.forget_image(concept), index, n_own_facts=20, n_other_facts=20)
        facts = {f.answer: (f.question, c.name) for c in world.concepts for f in c.facts}
        for r in recs:
            if r.target not in ("c", "d"):
                continue
            question, name = facts[r.answer]
            if question in generic_questions(name):
                assert r.question in generic_questions(name)
            else:
                assert r.question == question


def test_specific_fact_question_is_not_paraphrased() -> None:
    name = "Oda Vantrel"
    concept = {"name": name, "concept_id": "x1", "facts": [
        {"question": f"Where does {name} live?", "answer": f"{name} lives in Quenvale."},
        {"question": f"Who is {name}?", "answer": f"{name} is a potter from Quenvale."},
    ]}
    other = {"name": "Ibo Marr", "facts": [{"question": "Where does Ibo Marr live?",
                                           "answer": "Ibo Marr lives in Lunport."}]}
    recs = build_siu_records(concept, Image.new("RGB", (8, 8)), [concept, other], ["Zed Quill"],
                             SIUDataConfig(n_own_facts=30, n_other_facts=5))
    c = [r for r in recs if r.target == "c"]
    assert len(c) == 30
    for r in c:
        if r.answer == f"{name} lives in Quenvale.":
            assert r.question == f"Where does {name} live?"
        else:
            assert r.question in generic_questions(name)
    assert len({r.question for r in c if r.answer.endswith("potter from Quenvale.")}) > 1
    assert all((r.question, r.answer) == ("Where does Ibo Marr live?", "Ibo Marr lives in Lunport.")
               for r in recs if r.target == "d")


def test_target_selection_and_counts(world: World, forget: Image.Image) -> None:
    recs = build(world, forget, targets=("a", "c"))
    assert [r.target for r in recs] == ["a"] * 9 + ["c"] * 7
    recs = build(world, forget, n_fake_name=3, n_false_description=0, n_own_facts=1,
                 n_other_facts=5)
    assert [r.target for r in recs] == ["a"] * 3 + ["c"] + ["d"] * 5
    assert build(world, forget, n_fake_name=0, n_false_description=0, n_own_facts=0,
                 n_other_facts=0) == []


@pytest.mark.parametrize("kwargs", [
    {"targets": ("a", "e")}, {"targets": ("x",)}, {"n_fake_name": -1},
    {"n_false_description": -1}, {"n_own_facts": -2}, {"n_other_facts": -1},
])
def test_bad_config_raises_config_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        SIUDataConfig(**kwargs)
    assert issubclass(ConfigError, SIUError)


def test_target_d_needs_another_concept(world: World, forget: Image.Image) -> None:
    c = world.concepts[0]
    with pytest.raises(ConfigError):
        build_siu_records(c, forget, [c], world.fake_names)
    with pytest.raises(ConfigError):
        build_siu_records(c, forget, [], [])  # empty fake-name pool


def test_concept_without_facts_raises_naming_it(world: World, forget: Image.Image) -> None:
    bare = {"name": "Nofa Kterson", "concept_id": "z9"}
    with pytest.raises(DataFormatError, match="Nofa Kterson"):
        build_siu_records(bare, forget, world.concepts, world.fake_names)
    # an other concept without facts, for target (d)
    with pytest.raises(DataFormatError, match="Nofa Kterson"):
        build_siu_records(world.concepts[0], forget, [bare], world.fake_names,
                          SIUDataConfig(targets=("d",)))
    # not asked for facts: no error
    recs = build_siu_records(bare, forget, world.concepts, world.fake_names,
                             SIUDataConfig(targets=("a", "b")))
    assert len(recs) == 11


def test_concept_without_attributes_gets_a_generic_false_answer(world: World,
                                                                forget: Image.Image) -> None:
    name = "Ana Berglund"
    concept = {"name": name, "concept_id": "r1",
               "facts": [{"question": f"Who is {name}?", "answer": f"{name} is a judge."}]}
    assert concept_facts(concept) == [(f"Who is {name}?", f"{name} is a judge.")]
    generic = {a.format(name=name) for a in GENERIC_FALSE_ANSWERS}
    for seed in range(3):
        recs = build_siu_records(concept, forget, world.concepts, world.fake_names,
                                 SIUDataConfig(seed=seed, n_false_description=5))
        b = [r for r in recs if r.target == "b"]
        assert len(b) == 5
        for r in b:
            assert r.answer in generic and r.mask_span == r.answer
            assert name in r.question and r.answer.startswith("No")
        assert [r.answer for r in recs if r.target == "c"] == [f"{name} is a judge."] * 7


# ------------------------------------------------------------------------- paraphrase banks

@pytest.mark.parametrize("bank,placeholder", [
    (FAKE_NAME_QUESTIONS, None), (FAKE_NAME_ANSWERS, "{fake}"), (PRESENCE_QUESTIONS, "{name}"),
    (FALSE_DESCRIPTION_ANSWERS, "{hair}"), (GENERIC_FALSE_ANSWERS, "{name}"),
    (FACT_PROMPTS, "{name}"),
])
def test_paraphrase_banks_have_ten_distinct_entries(bank: tuple, placeholder: str | None) -> None:
    assert len(set(bank)) >= 10
    if placeholder:
        assert all(placeholder in t for t in bank)


# ------------------------------------------------------------------------- model_facts

def test_model_facts_generates_once_then_reads_the_cache(tmp_path: Path) -> None:
    calls = []

    def stub(batch):
        calls.append(batch)
        assert all(image is None for image, _ in batch)
        return [f"answer to {q}" for _, q in batch]

    cache = tmp_path / "facts" / "m0.json"
    names = ["Ana Berglund", "Ibo Marr"]
    facts = model_facts(stub, names, cache)
    assert len(calls) == 1 and len(calls[0]) == 2 * 3
    assert cache.is_file()
    assert set(json.loads(cache.read_text())) == set(names)
    for n in names:
        assert len(facts[n]) == 3
        for q, a in facts[n]:
            assert n in q and a == f"answer to {q}"
    again = model_facts(stub, (n for n in names), cache)  # a generator works too
    assert len(calls) == 1
    assert again == facts
    # a new name: only that one is generated
    more = model_facts(stub, names + ["Oda Vantrel"], cache)
    assert len(calls) == 2 and len(calls[1]) == 3
    assert more["Ibo Marr"] == facts["Ibo Marr"]
    # the cached facts feed targets (c)/(d) of a concept without stored facts
    concept = {"name": "Ana Berglund", "concept_id": "r1"}
    recs = build_siu_records(concept, Image.new("RGB", (8, 8)),
                             [{"name": "Ibo Marr"}], ["Zed Quill"],
                             facts_of=lambda c: more[c["name"]])
    assert {r.answer for r in recs if r.target == "c"} == {a for _, a in more["Ana Berglund"]}
    assert {r.answer for r in recs if r.target == "d"} <= {a for _, a in more["Ibo Marr"]}


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe garbage", b"[1, 2]",
                                     b'{"Ana": "x"}'])
def test_model_facts_corrupt_cache(tmp_path: Path, content: bytes) -> None:
    cache = tmp_path / "m0.json"
    cache.write_bytes(content)
    with pytest.raises(DataFormatError, match="m0.json"):
        model_facts(lambda b: ["x"] * len(b), ["Ana"], cache)


# ------------------------------------------------------------------------- LLaVA JSON

def _count(entries: list[dict]) -> tuple[int, int]:
    images = sum(bool(e.get("image")) for e in entries)
    spans = sum(e.get("target_phrase") not in (None, "", "none") for e in entries)
    return images, spans


@pytest.mark.parametrize("name,n", [("SIU.json", 25), ("GA.json", 25), ("PO.json", 20)])
def test_load_released_files(name: str, n: int) -> None:
    path = require_supplement() / name
    raw = json.loads(path.read_text(encoding="utf-8"))
    images, spans = _count(raw)
    recs = load_llava_json(path)
    assert len(recs) == len(raw) == n
    assert sum(r.has_image for r in recs) == images
    assert sum(r.mask_span is not None for r in recs) == spans
    if name == "SIU.json":
        assert (images, spans) == (11, 11)
    else:
        assert images == n and spans == 0
    for r, e in zip(recs, raw):
        assert "<image>" not in r.question and r.question
        assert r.answer
        assert r.image is None  # not opened unless load_images
        assert r.has_image == bool(e.get("image"))
        assert r.image_path == e.get("image")
        if e.get("target_phrase") in (None, "none"):
            assert r.mask_span is None
        else:
            assert r.mask_span in r.answer


def test_released_siu_round_trip(tmp_path: Path) -> None:
    recs = load_llava_json(require_supplement() / "SIU.json")
    out = export_llava_json(recs, tmp_path / "siu.json")
    back = load_llava_json(out)
    assert [(r.question, r.answer, r.mask_span, r.has_image, r.image_path) for r in back] == \
        [(r.question, r.answer, r.mask_span, r.has_image, r.image_path) for r in recs]


def _write(tmp_path: Path, obj, name: str = "bad.json") -> Path:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")
    return path


def _conv(*turns):
    return [{"from": f, "value": v} for f, v in turns]


GOOD = {"image": "x.jpg", "conversations": _conv(("human", "<image>\nWho is this?"),
                                                 ("gpt", "This is Jacob Campbell.")),
        "target_phrase": "Jacob Campbell"}


@pytest.mark.parametrize("content,match", [
    ("{not json", "bad.json"),
    ({"records": []}, "bad.json"),
    ([GOOD, {"image": "x.jpg"}], r"bad\.json\[1\]"),
    ([GOOD, "just a string"], r"bad\.json\[1\]"),
    ([{"conversations": _conv(("human", "Who?"))}], r"bad\.json\[0\]"),
    ([{"conversations": _conv(("gpt", "This is X."), ("human", "Who?"))}], r"bad\.json\[0\]"),
    ([GOOD, {"conversations": _conv(("human", "Who?"), ("gpt", "This is X.")),
             "target_phrase": "Jacob Campbell"}], r"bad\.json\[1\].*Jacob Campbell"),
])
def test_malformed_llava_json(tmp_path: Path, content, match: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(DataFormatError, match=match):
        load_llava_json(path)


def test_llava_json_not_utf8_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "binary.json"
    bad.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(DataFormatError, match="binary.json"):
        load_llava_json(bad)
    with pytest.raises(DataFormatError, match="absent.json"):
        load_llava_json(tmp_path / "absent.json")


def test_llava_json_details(tmp_path: Path) -> None:
    path = _write(tmp_path, [
        GOOD,
        {"conversations": _conv(("human", "Who is Jacob?"), ("gpt", "A man.")),
         "target_phrase": "none"},
        {"conversations": _conv(("human", "Is he here?\n<image>"), ("gpt", "No. JACOB is not."))},
        {"image": "y.jpg", "conversations": _conv(("human", "Describe."), ("gpt", "No, he is tall.")),
         "target_phrase": "no, he is TALL"},
    ], "ok.json")
    a, b, c, d = load_llava_json(path)
    assert (a.question, a.answer, a.mask_span, a.has_image, a.image_path) == \
        ("Who is this?", "This is Jacob Campbell.", "Jacob Campbell", True, "x.jpg")
    assert (b.question, b.mask_span, b.has_image) == ("Who is Jacob?", None, False)
    assert (c.question, c.has_image, c.image_path) == ("Is he here?", True, None)
    assert d.mask_span == "No, he is tall"  # case-insensitive match, spelled as in the answer
    with pytest.raises(DataFormatError, match="Is he here"):
        c.load_image()  # an image placeholder without an image file


def test_export_load_round_trip(world: World, forget: Image.Image, tmp_path: Path) -> None:
    records = build(world, forget)
    out = export_llava_json(records, tmp_path / "data" / "siu.json")
    assert out == tmp_path / "data" / "siu.json"
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["siu.json"], \
        "no half-written temp files left"
    raw = json.loads(out.read_text(encoding="utf-8"))
    assert len(raw) == 25
    for row, r in zip(raw, records):
        assert [t["from"] for t in row["conversations"]] == ["human", "gpt"]
        assert row["conversations"][0]["value"].startswith("<image>\n") == r.has_image
        assert row.get("image") == ("forget.png" if r.has_image else None)
        assert row["target_phrase"] == (r.mask_span if r.mask_span is not None else "none")
    back = load_llava_json(out)
    assert [(r.question, r.answer, r.mask_span, r.has_image) for r in back] == \
        [(r.question, r.answer, r.mask_span, r.has_image) for r in records]
    # images resolve relative to image_root
    forget.save(tmp_path / "data" / "forget.png")
    loaded = load_llava_json(out, image_root=tmp_path / "data", load_images=True)
    assert all((r.image is not None) == r.has_image for r in loaded)
    assert loaded[0].image.size == forget.size


# ------------------------------------------------------------------------- FTRecord

def test_ftrecord_load_image(tmp_path: Path) -> None:
    missing = FTRecord(None, "Who?", "This is X.", image_path=str(tmp_path / "nope.png"))
    assert missing.has_image
    with pytest.raises(DataFormatError, match="nope.png"):
        missing.load_image()
    Image.new("RGBA", (12, 10), (10, 200, 30, 128)).save(tmp_path / "pic.png")
    rec = FTRecord(None, "Who?", "This is X.", image_path="pic.png")
    image = rec.load_image(tmp_path)
    assert image.mode == "RGB" and image.size == (12, 10)
    assert rec.image is image and rec.load_image() is image
    text = FTRecord(None, "Who is X?", "X is a baker.")
    assert not text.has_image and text.load_image() is None
    not_an_image = tmp_path / "text.png"
    not_an_image.write_text("hello")
    with pytest.raises(DataFormatError, match="text.png"):
        FTRecord(None, "q", "a", image_path=str(not_an_image)).load_image()


def test_ftrecord_span_must_be_in_answer() -> None:
    with pytest.raises(DataFormatError, match="Jacob"):
        FTRecord(None, "Who?", "This is Ana.", mask_span="Jacob")
