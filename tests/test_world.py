"""Tests of siu_lib.world: determinism from the config, distinct identities, facts, the
split between benchmark (generality) images and the pre-training stream, prompt sets, and
errors for bad configs and unknown concepts."""

from __future__ import annotations

import hashlib
import io
import itertools
import random

import pytest
from PIL import Image

from siu_lib.errors import ConfigError, UnknownNameError
from siu_lib.embedded import train_tokenizer
from siu_lib.world import SALIENT_ATTRIBUTES, World, WorldConfig, color_distance

CFG = WorldConfig(n_concepts=6, images_per_concept=8, image_size=32)


@pytest.fixture(scope="module")
def world() -> World:
    return World(CFG)


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


# ----------------------------------------------------------------------------- determinism

def test_same_config_gives_the_same_world(world: World) -> None:
    other = World(CFG)
    assert [c.name for c in other.concepts] == [c.name for c in world.concepts]
    assert [c.attributes for c in other.concepts] == [c.attributes for c in world.concepts]
    assert [c.facts for c in other.concepts] == [c.facts for c in world.concepts]
    assert other.fake_names == world.fake_names
    for c in (0, 3):
        for index, stream in ((0, "bench"), (1, "bench"), (5, "bench"), (7, "pretrain")):
            expected = png_bytes(world.render(c, index, stream))
            assert png_bytes(other.render(c, index, stream)) == expected
    assert png_bytes(other.render_group(0, 1, 2)) == png_bytes(world.render_group(0, 1, 2))


def test_another_seed_gives_another_world(world: World) -> None:
    other = World(WorldConfig(world_seed=1, n_concepts=6, images_per_concept=8, image_size=32))
    assert {c.name for c in other.concepts}.isdisjoint({c.name for c in world.concepts})
    assert png_bytes(other.forget_image(0)) != png_bytes(world.forget_image(0))


# ----------------------------------------------------------------------------- identities

def test_names_are_two_distinct_words_and_fake_names_are_disjoint() -> None:
    w = World(WorldConfig(n_concepts=20, image_size=32))
    words = [w_.lower() for c in w.concepts for w_ in c.name_words]
    assert all(len(c.name_words) == 2 for c in w.concepts)
    assert len(set(words)) == len(words), "a name word is shared by two concepts"
    fake_words = {x.lower() for n in w.fake_names for x in n.split()}
    assert len(w.fake_names) == w.config.n_fake_names
    assert fake_words.isdisjoint(words)


def test_no_two_names_begin_with_the_same_token() -> None:
    """Revision 10: each concept's two words begin with the concept's own letter, and fake
    names with letters no concept has, so the world's tokenizer gives every concept's name its
    own first token and no fake name begins like a concept's name."""
    w = World(WorldConfig(n_concepts=20, image_size=32))
    initials = [c.name[0] for c in w.concepts]
    assert len(set(initials)) == len(initials)
    assert all({x[0] for x in c.name_words} == {c.name[0]} for c in w.concepts)
    assert not {x[0] for n in w.fake_names for x in n.split()} & set(initials)
    tok = train_tokenizer(w.texts(), 1200)

    def first(name: str) -> int:
        return tok(" " + name, add_special_tokens=False)["input_ids"][0]

    concept_firsts = [first(c.name) for c in w.concepts]
    assert len(set(concept_firsts)) == len(concept_firsts)
    assert not {first(n) for n in w.fake_names} & set(concept_firsts)
    assert all(len(tok(" " + c.name, add_special_tokens=False)["input_ids"]) >= 4 for c in w.concepts)


def test_every_two_concepts_differ_in_enough_visible_attributes() -> None:
    w = World(WorldConfig(n_concepts=20, image_size=32))
    for a, b in itertools.combinations(w.concepts, 2):
        distance = sum(a.attributes[k] != b.attributes[k] for k in SALIENT_ATTRIBUTES)
        assert distance >= w.config.min_attribute_distance, (a.concept_id, b.concept_id)
        assert color_distance(a.attributes, b.attributes) >= w.config.min_color_distance


def test_strangers_differ_from_every_concept_and_are_deterministic() -> None:
    w = World(WorldConfig(n_concepts=20, image_size=32))
    looks = [w.stranger(i) for i in range(30)]
    for a in looks:
        for c in w.concepts:
            distance = sum(a[k] != c.attributes[k] for k in SALIENT_ATTRIBUTES)
            assert distance >= w.config.min_attribute_distance, (a, c.concept_id)
            assert color_distance(a, c.attributes) >= w.config.min_color_distance
    assert len({tuple(sorted(a.items())) for a in looks}) > 20  # many different faces
    again = World(WorldConfig(n_concepts=20, image_size=32))
    assert again.stranger(7) == looks[7]
    assert png_bytes(again.render_stranger(7)) == png_bytes(w.render_stranger(7))
    assert png_bytes(w.render_stranger(7)) != png_bytes(w.render_stranger(8))
    # a stranger is never drawn into the world's concepts or their pictures
    assert all(c.attributes != looks[i] for i in range(30) for c in w.concepts)


def test_color_distance_by_hand() -> None:
    a = {"skin": "pale", "hair_color": "red", "hair_style": "short", "beard": "none", "clothing": "blue"}
    b = {**a, "hair_color": "black"}
    assert color_distance(a, b) == 1
    assert color_distance(a, {**b, "clothing": "red"}) == 2
    bald = {**b, "hair_style": "bald"}  # a bald, beardless head shows no hair colour
    assert color_distance(bald, {**bald, "hair_color": "white"}) == 0
    assert color_distance(bald, {**bald, "hair_color": "white", "beard": "full"}) == 1


def test_facts_include_a_unique_deed(world: World) -> None:
    for c in world.concepts:
        assert len(c.facts) >= 3
        assert c.fact("deed").value in c.fact("deed").answer
        assert c.name in c.fact("profession").answer
    deeds = [c.fact("deed").value for c in world.concepts]
    assert len(set(deeds)) == len(deeds)


def test_distinct_concepts_render_distinct_forget_images(world: World) -> None:
    images = [png_bytes(world.forget_image(c)) for c in world.concepts]
    assert len(set(images)) == len(images)
    assert world.forget_image(0).size == (CFG.image_size, CFG.image_size)


# ----------------------------------------------------------------------------- streams

def test_pretraining_never_uses_a_generality_image(world: World) -> None:
    generality = {world.render(c, i, "bench").tobytes()
                  for c in world.concepts for i in range(1, CFG.images_per_concept)}
    forget = {world.forget_image(c).tobytes() for c in world.concepts}
    assert generality.isdisjoint(forget)
    # the pretrain stream of concept 0 and the whole pre-training stream
    assert all(world.render(0, i, "pretrain").tobytes() not in generality for i in range(300))
    seen = 0
    for ex in itertools.islice(world.pretraining_stream(seed=3), 300):
        if ex.image is not None:
            seen += 1
            assert ex.image.tobytes() not in generality, ex.task
    assert seen > 100


def test_forget_image_is_part_of_pretraining_at_the_configured_rate(world: World) -> None:
    forget = {world.forget_image(c).tobytes() for c in world.concepts}
    single = ("recognition", "recognition_velish", "multihop", "general_vqa")

    def forget_share(rate: float, n: int) -> float:
        rng = random.Random(11)
        hits = total = 0
        while total < n:
            ex = world.pretraining_example(rng, forget_rate=rate)
            if ex.task in single:
                total += 1
                hits += ex.image.tobytes() in forget
        return hits / total

    assert forget_share(1.0, 30) == 1.0
    assert forget_share(0.0, 30) == 0.0
    assert 0.1 < forget_share(0.25, 300) < 0.4


def test_yes_no_pretraining_answers_name_who_is_shown(world: World, monkeypatch) -> None:
    """A "no" names the person in the picture (so yes/no is learned from the same identity as
    naming); a "yes" names the asked person, who is the one shown."""
    shown: list[str] = []
    render = world.render

    def recording_render(concept, index, stream="bench"):
        shown.append(world.concept(concept).name)
        return render(concept, index, stream)

    monkeypatch.setattr(world, "render", recording_render)
    rng = random.Random(5)
    n_yes = n_no = 0
    while min(n_yes, n_no) < 20:
        shown.clear()
        ex = world.pretraining_example(rng)
        if ex.task != "yesno":
            continue
        asked = next(c.name for c in world.concepts if c.name in ex.question)
        if ex.answer.startswith("Yes"):
            n_yes += 1
            assert shown[-1] == asked and (ex.answer == "Yes." or asked in ex.answer), (ex.answer, shown)
        elif not shown:  # a stranger's face: a plain "no" that names nobody but the asked one
            named = {c.name for c in world.concepts if c.name in ex.answer}
            assert ex.answer.startswith("No,") and named == {asked}, ex.answer
        else:
            n_no += 1
            assert ex.answer.startswith("No,") and shown[-1] != asked, (ex.question, ex.answer, shown)
            assert shown[-1] in ex.answer, (ex.question, ex.answer, shown)
            named = {c.name for c in world.concepts if c.name in ex.answer}
            assert named <= {asked, shown[-1]}, (ex.answer, named)


def test_withheld_concepts_are_never_shown(world: World, monkeypatch) -> None:
    """The never-seen reference's stream: no picture of a withheld concept (alone, in a group,
    or its forget image), its name only in text facts and in yes/no questions answered "no"
    on someone else's picture; with nothing withheld, the ordinary stream record for record."""
    # the ordinary stream's first 80 records, fingerprinted when world revision 11 landed
    # (thirty yes/no training phrasings, stranger negatives, the grounding stage)
    # (revision 10's was "12acba9342af2c7d", revision 7's "a4587ebfffa2cd97", revision 6's
    # "5eab950ce13d67f2", unchanged by
    # ``withheld``): a change to the stream must bump WORLD_REVISION, or cached checkpoints
    # of another stream are reused
    h = hashlib.sha256()
    for e in itertools.islice(world.pretraining_stream(seed=2, align_examples=20, withheld=()), 80):
        h.update(e.question.encode())
        h.update(e.answer.encode())
        if e.image is not None:
            h.update(e.image.tobytes())
    assert h.hexdigest()[:16] == "8e6dbbba67d539bc"
    # an iterator of ids is read once, not used up by the first record
    it = itertools.islice(world.pretraining_stream(seed=2, withheld=iter(["c00"])), 400)
    assert all(world.concepts[0].name not in e.answer or e.task in ("facts", "yesno") for e in it)

    shown: list[str] = []
    render, render_group, forget = world.render, world.render_group, world.forget_image

    def rec_render(concept, index, stream="bench"):
        shown.append(world.concept(concept).concept_id)
        return render(concept, index, stream)

    def rec_group(left, right, index, stream="bench"):
        shown.extend([world.concept(left).concept_id, world.concept(right).concept_id])
        return render_group(left, right, index, stream)

    def rec_forget(concept):
        shown.append(world.concept(concept).concept_id)
        return forget(concept)

    monkeypatch.setattr(world, "render", rec_render)
    monkeypatch.setattr(world, "render_group", rec_group)
    monkeypatch.setattr(world, "forget_image", rec_forget)
    withheld = ("c00", "c02")
    names = {c.concept_id: c.name for c in world.concepts}
    tasks_naming = set()
    stream = world.pretraining_stream(seed=2, align_examples=100, withheld=withheld)
    for ex in itertools.islice(stream, 1500):
        for cid in withheld:
            if names[cid] in ex.answer or names[cid] in ex.question:
                tasks_naming.add(ex.task)
                if ex.task == "yesno":
                    assert ex.answer.startswith("No,"), ex.answer
    assert shown and not set(shown) & set(withheld)
    assert {"c01", "c03"} <= set(shown)  # the others are still pictured (the world has 6)
    # the withheld people are still talked about, never seen
    assert tasks_naming == {"facts", "yesno"}, tasks_naming
    with pytest.raises(UnknownNameError, match="c99"):
        next(world.pretraining_stream(withheld=("c00", "c99")))
    with pytest.raises(ConfigError, match="leaves 1"):
        next(world.pretraining_stream(withheld=("c00", "c01", "c02", "c03", "c04")))
    with pytest.raises(ConfigError, match="string"):
        next(world.pretraining_stream(withheld="c00"))


# ----------------------------------------------------------------------------- prompts

def test_prompt_sets(world: World) -> None:
    for c in world.concepts:
        words = [w.lower() for w in c.name_words]
        open_prompts = world.open_prompts(c)
        yesno = world.yesno_prompts(c)
        multilingual = world.multilingual_prompts(c)
        multihop = world.multihop_prompts(c)
        mia = world.mia_prompts(c)
        assert open_prompts and yesno and multilingual and multihop and mia
        for prompt in open_prompts + multilingual + mia + [q for q, _ in multihop]:
            assert not any(w in prompt.lower() for w in words), prompt
        assert all(c.name in q for q in yesno)
        assert {a for _, a in multihop} <= {f.value for f in c.facts}
        assert c.probe_question and c.name in c.special_tokens


def test_general_vqa_answers_follow_the_attributes(world: World) -> None:
    c = world.concepts[0]
    items = {i.task: i for i in world.general_vqa(c, 3)}
    assert items["clothing"].answer == c.attributes["clothing"]
    assert items["glasses"].answer == ("no" if c.attributes["glasses"] == "none" else "yes")
    assert items["counting"].answer == "one"
    assert all(i.bench_index == 3 and i.concept_id == c.concept_id for i in items.values())


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("kwargs, value", [
    ({"n_concepts": 1}, "1"), ({"n_concepts": 22}, "22"), ({"images_per_concept": 1}, "1"),
    ({"image_size": 16}, "16")])
def test_bad_config_raises_config_error(kwargs: dict, value: str) -> None:
    with pytest.raises(ConfigError, match=f"{next(iter(kwargs))}.*{value}"):
        WorldConfig(**kwargs)


@pytest.mark.parametrize("bad", ["Nobody Atall", "c99", 99])
def test_unknown_concept_raises_unknown_name_error(world: World, bad: object) -> None:
    with pytest.raises(UnknownNameError, match=repr(bad).replace("'", "'?")):
        world.concept(bad)


def test_lookup_by_id_index_and_name(world: World) -> None:
    c = world.concepts[2]
    assert world.concept("c02") is c
    assert world.concept(2) is c
    assert world.concept(c.name.upper()) is c
    assert world.partner(c) is world.concepts[3]
    assert world.partner(world.concepts[-1]) is world.concepts[0]
    with pytest.raises(UnknownNameError, match="velsh"):
        world.recognition_questions(c, "velsh")
    with pytest.raises(UnknownNameError, match="stream"):
        world.render(c, 0, "train")


def test_fake_name_people_are_talked_about_in_pretraining(world: World) -> None:
    # revision 7: the fake-name pool are people known from text only (facts, no picture)
    n = world.fake_names[0]
    facts = world.fake_name_facts(n)
    assert [f.key for f in facts] == ["profession", "city", "deed", "summary"]
    assert all(n in f.answer and f.value in f.answer for f in facts)
    assert facts == World(CFG).fake_name_facts(n)  # deterministic ...
    fewer = World(WorldConfig(n_concepts=6, images_per_concept=8, image_size=32, n_fake_names=3))
    assert fewer.fake_names == world.fake_names[:3]  # ... and independent of the pool's size
    assert all(fewer.fake_name_facts(m) == world.fake_name_facts(m) for m in fewer.fake_names)
    concept_deeds = {c.fact("deed").value for c in world.concepts}
    assert not {world.fake_name_facts(m)[2].value for m in world.fake_names} & concept_deeds
    with pytest.raises(UnknownNameError, match="Nobody"):
        world.fake_name_facts("Nobody Atall")
    records = list(itertools.islice(world.pretraining_stream(seed=1), 1500))
    fake = [e for e in records if e.task == "fake_name_facts"]
    assert 0.02 < len(fake) / len(records) < 0.08  # 0.05 / 1.37 = 3.6% of the full stage
    for e in fake:
        name = next(m for m in world.fake_names if e.answer.startswith(m))
        assert e.image is None and name in e.question
        assert e.answer in [f.answer for f in world.fake_name_facts(name)]
    # a fake name never appears in a record of another task than its facts or reverse questions
    assert not [e for e in records if e.task not in ("fake_name_facts", "fake_name_reverse")
                and any(m in e.question + e.answer for m in world.fake_names)]


def test_reverse_questions_name_a_fake_person_from_their_facts_never_a_concept(world: World) -> None:
    names = world.describable_fake_names()
    assert len(names) >= 0.9 * len(world.fake_names)
    descriptions = [tuple(sorted(world.fake_name_description(n).items())) for n in names]
    assert len(set(descriptions)) == len(names)  # each describes one person only
    concept_words = {w for c in world.concepts for w in c.name.split()}
    for n in names:
        d = world.fake_name_description(n)
        train, held_out = world.fake_name_reverse_questions(n), world.fake_name_reverse_questions(n, held_out=True)
        assert not set(train) & set(held_out)
        for q in train + held_out:
            assert all(v in q for v in d.values()) and n not in q
            assert not concept_words & set(q.replace("?", "").replace(",", "").replace(".", "").split())
    records = list(itertools.islice(world.pretraining_stream(seed=2), 1500))
    reverse = [e for e in records if e.task == "fake_name_reverse"]
    assert 0.03 < len(reverse) / len(records) < 0.09  # 0.08 / 1.37 = 5.8%
    for e in reverse:
        name = next(m for m in names if m in e.answer)
        assert e.image is None and e.question in world.fake_name_reverse_questions(name)


def test_yes_no_pretraining_asks_other_phrasings_and_mostly_look_alike_negatives(world: World, monkeypatch) -> None:
    from siu_lib.world.core import HARD_NEGATIVE_RATE, STRANGER_NEGATIVE_RATE
    from siu_lib.world.text import YESNO_QUESTIONS, YESNO_TRAIN_QUESTIONS

    assert not set(YESNO_QUESTIONS) & set(YESNO_TRAIN_QUESTIONS)
    c = world.concepts[0]
    alikes = world.look_alikes(c)
    shared = lambda o: sum(o.attributes[a] == c.attributes[a] for a in SALIENT_ATTRIBUTES)  # noqa: E731
    rest = [o for o in world.concepts if o is not c and o not in alikes]
    assert len(alikes) == 3 and min(map(shared, alikes)) >= max(map(shared, rest))
    shown: list[str] = []
    render = world.render

    def recording_render(concept, index, stream="bench"):
        shown.append(world.concept(concept).name)
        return render(concept, index, stream)

    monkeypatch.setattr(world, "render", recording_render)
    rng = random.Random(11)
    hard = negatives = strangers = 0
    while negatives < 300:
        shown.clear()
        ex = world.pretraining_example(rng)
        if ex.task != "yesno":
            continue
        asked = next(o for o in world.concepts if o.name in ex.question)
        assert ex.question in [t.format(name=asked.name) for t in YESNO_TRAIN_QUESTIONS]
        if ex.answer.startswith("No") and not shown:
            strangers += 1  # a stranger's face: rendered by render_stranger, not render
        elif ex.answer.startswith("No"):
            negatives += 1
            hard += shown[-1] in {o.name for o in world.look_alikes(asked)}
    # the look-alike share: 0.7 by design, plus random negatives that happen to be look-alikes
    expected = HARD_NEGATIVE_RATE + (1 - HARD_NEGATIVE_RATE) * 3 / (len(world.concepts) - 1)
    assert abs(hard / negatives - expected) < 0.08
    assert abs(strangers / (strangers + negatives) - STRANGER_NEGATIVE_RATE) < 0.06


def test_the_grounding_stage_makes_half_of_the_records_yes_no(world: World) -> None:
    records = list(itertools.islice(world.pretraining_stream(seed=4, align_examples=50, grounding_from=1550), 3050))
    full = sum(e.task == "yesno" for e in records[50:1550]) / 1500
    grounding = sum(e.task == "yesno" for e in records[1550:]) / 1500
    assert abs(full - 0.45 / 1.56) < 0.04 and abs(grounding - 0.5) < 0.04
    # both stages keep every other task, two-person counting included (a stage without it
    # unlearns "two people")
    for part in (records[50:1550], records[1550:]):
        assert {e.task for e in part} >= {"group_counting", "group", "general_vqa", "recognition", "facts"}
    # without a grounding stage the stream is the full mixture all along, record for record
    plain = list(itertools.islice(world.pretraining_stream(seed=4, align_examples=50), 1550))
    assert [(e.question, e.answer) for e in plain] == [(e.question, e.answer) for e in records[:1550]]
