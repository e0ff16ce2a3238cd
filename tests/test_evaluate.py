"""The evaluation driver on the pre-trained micro world: every metric computed from real
generations, with the original model as its own reference."""

from __future__ import annotations

import copy
import math

import pytest

from siu_lib.bench import load_benchmark, write_synthetic
from siu_lib.errors import ConfigError, UnknownNameError
from siu_lib.evaluate import TABLE1_METRICS, EvalConfig, evaluate_unlearning
from siu_lib.embedded import KNOWLEDGE_MAX_NEW_TOKENS
from siu_lib.metrics import reveals_yesno
from siu_lib import runs as run_store
from siu_lib.analysis import (SWEEP_COLUMNS, SWEEP_CONFIG_COLUMNS, SweepSetting, choose_setting,
                              never_seen_runs, seed_spread_row, siu_target_runs, siu_targets,
                              sweep_runs, sweep_table)
from siu_lib.diagnostics import (OPEN_ANSWER_KINDS, QUESTION_CONSISTENCY_COLUMNS,
                                 YESNO_ANSWER_KINDS, open_answer_kinds, record_fit,
                                 question_consistency, yesno_answer_kinds)
from siu_lib.runs import RunSpec, load_run, original_report, original_row, run_one, run_path
from siu_lib.metrics import reveals_open, reveals_yesno_answer
from siu_lib.tables import mean_std_table
from siu_lib.train import TrainConfig
from siu_lib.world import World

#: strong enough to make the micro model stop naming the target in 6 steps
STRONG = TrainConfig(steps=6, batch_size=4, lr=2e-2, projector_lr=1e-3, lora_r=8, lora_alpha=16,
                     lora_dropout=0.0)


def test_original_model_is_its_own_reference(micro, tmp_path, monkeypatch):
    bench = load_benchmark(write_synthetic(micro.world, tmp_path / "bench", progress=False))
    cfg = EvalConfig(n_generality_images=4, n_cdis_images=2, n_other_images=2)
    rep = original_report(micro.model, micro.processor, bench, "c00", cfg)
    assert set(TABLE1_METRICS) <= set(rep.metrics)
    assert rep.metrics["generality_cdis"].value == 0.0  # C-Dis of M0 against itself
    # the pre-trained model recognises the concept: most answers reveal it
    assert rep.metrics["generality_em"].value < 50.0
    assert rep.metrics["generality_geval"].value > 3.0
    assert rep.specificity_accuracy["recognition"] >= 50.0
    assert len(rep.metrics["generality_em"].per_example) == 2 * 4
    assert all(g["answer"] is not None for g in rep.generations)
    row = original_row("micro", rep, bench, micro.world.fake_names)
    assert row["method"] == "original" and row["specificity_ratio"] == 1.0
    # every column of a run's row has a value: no training, the evaluation's own seconds
    assert row["train_seconds"] == 0.0 and row["eval_seconds"] == rep.seconds > 0
    assert row["open_names_fake"] == 0.0
    assert not any(isinstance(v, float) and math.isnan(v) for v in row.values()), row
    # the EM split by prompt kind, recounted by hand from the generations
    name = bench.concept("c00").name
    for metric, group in (("generality_em", "generality"), ("efficacy", "efficacy")):
        gens = [g for g in rep.generations if g["group"] == group]
        opens = [0 if reveals_open(g["answer"], name) else 100 for g in gens if g["kind"] == "open"]
        yesnos = [0 if reveals_yesno_answer(g["answer"], name) else 100 for g in gens if g["kind"] == "yesno"]
        assert opens and yesnos
        assert row[f"{metric}_open"] == pytest.approx(sum(opens) / len(opens))
        assert row[f"{metric}_yesno"] == pytest.approx(sum(yesnos) / len(yesnos))
        assert row[metric] == pytest.approx((sum(opens) + sum(yesnos)) / (len(opens) + len(yesnos)))

    spec = RunSpec("micro", "c00", "siu", 0, 6)
    monkeypatch.setattr(run_store, "results_dir", lambda profile: tmp_path / "results" / profile)
    run = run_one(spec, micro.model, micro.processor, bench, micro.world.fake_names, STRONG,
                  cfg, rep, profile="test")
    # the run's JSON reads back with its row, and its yes/no answers sort into the four kinds,
    # of which "no" is exactly the yes/no half of the generality EM
    saved = load_run("test", spec, STRONG, cfg)
    # the same spec evaluated on fewer images is another file, and a run never written is an error
    other_cfg = EvalConfig(n_generality_images=2, n_cdis_images=2, n_other_images=2)
    assert run_path("test", spec, STRONG, other_cfg) != run_path("test", spec, STRONG, cfg)
    with pytest.raises(UnknownNameError, match="micro_siu_c00_s0_n6_"):
        load_run("test", spec, STRONG, other_cfg)
    assert saved["row"] == pytest.approx(run, nan_ok=True) and saved["seed"] == 0
    others = [c.name for c in bench.concepts] + list(micro.world.fake_names)
    kinds = yesno_answer_kinds(saved["evaluation"]["generations"], name, others)
    assert set(kinds) == set(YESNO_ANSWER_KINDS) and sum(kinds.values()) == pytest.approx(100.0)
    assert kinds["no"] == pytest.approx(run["generality_em_yesno"])
    assert run["efficacy"] > rep.metrics["efficacy"].value  # forgetting went up on the forget image
    assert run["generality_cdis"] > 0.0
    assert math.isfinite(run["fluency"]) and run["specificity_ratio"] > 0
    n_open = sum(g["kind"] == "open" for g in rep.generations if g["group"] == "generality")
    n_yesno = sum(g["kind"] == "yesno" for g in rep.generations if g["group"] == "generality")
    assert run["generality_em"] == pytest.approx(
        (n_open * run["generality_em_open"] + n_yesno * run["generality_em_yesno"]) / (n_open + n_yesno))
    import pandas as pd
    table = mean_std_table(pd.DataFrame([run, {**run, "efficacy": run["efficacy"] - 10}]),
                           ["model", "method"], ["efficacy"])
    assert abs(table.loc[0, "efficacy"] - (run["efficacy"] - 5)) < 1e-9
    assert abs(table.loc[0, "efficacy_std"] - 5) < 1e-9


def test_yesno_answer_kinds_by_hand():
    gens = [{"group": "generality", "kind": "yesno", "answer": a} for a in (
        "No, this is Tiabar Sholei.",              # no
        "No, this is Varok Delmuran.",             # a no that names the person shown as the concept
        "Yes, this is Varok Delmuran.",            # yes + the concept
        "Yes, Delmuran is in the picture.",        # yes + a word of the concept's name
        "Yes, this is Jacob Campbell.",            # yes + someone else (a fake name)
        "yes, this is Jacob Camp",                 # yes + a garbled fake name: still someone else
        "Yes.",                                    # yes + nobody
        "Yes, this isas Zeok.",                    # yes + garbled text naming nobody
        "Yes, this is Campbellton.",               # a name word only inside another word: nobody
    )] + [{"group": "generality", "kind": "open", "answer": "Yes, this is Jacob Campbell."},
          {"group": "efficacy", "kind": "yesno", "answer": "Yes."}]
    kinds = yesno_answer_kinds(gens, "Varok Delmuran", ["Jacob Campbell", "Tiabar Sholei", "Varok Delmuran"])
    assert kinds == pytest.approx({"no": 100 / 9, "no_names_concept": 100 / 9, "yes_names_concept": 200 / 9,
                                   "yes_names_other": 200 / 9, "yes_names_nobody": 300 / 9})
    assert yesno_answer_kinds(gens, "Varok Delmuran", [], group="efficacy")["yes_names_nobody"] == 100.0
    assert all(math.isnan(v) for v in yesno_answer_kinds(gens, "Varok Delmuran", [], group="x").values())


def test_record_fit_by_hand():
    from siu_lib.finetune_data import FTRecord
    a = FTRecord(None, "Who is this?", "This is Jacob Campbell.", "a", "Jacob Campbell")
    b = FTRecord(None, "Is Varok Delmuran here?", "No. Varok Delmuran has red hair.", "b",
                 "No. Varok Delmuran has red hair.")
    name = "Varok Delmuran"
    assert record_fit(a, "This is Jacob Campbell.", name) == {"reveals": False, "learned": True}
    assert record_fit(a, "That is campbell.", name) == {"reveals": False, "learned": True}
    # the fake name beside the concept's: still revealing, so not learned
    assert record_fit(a, "Jacob Campbell, or Varok Delmuran.", name) == {"reveals": True, "learned": False}
    assert record_fit(a, "This is Delmuran.", name) == {"reveals": True, "learned": False}
    # neither name (garbled, someone else): forgotten by the EM but the record is not learned
    assert record_fit(a, "This is Bredrei Triafopeth.", name) == {"reveals": False, "learned": False}
    assert record_fit(b, "No, this is Jacob Campbell.", name) == {"reveals": False, "learned": True}
    assert record_fit(b, "Yes, this is Varok Delmuran.", name) == {"reveals": True, "learned": False}
    with pytest.raises(ConfigError, match="'c'"):
        record_fit(FTRecord(None, "Who is X?", "X is a chemist.", "c"), "X is a chemist.", name)


def test_open_answer_kinds_by_hand():
    gens = [{"group": "generality", "kind": "open", "answer": a} for a in (
        "This is Varok Delmuran.",                 # the concept
        "The picture shows Delmuran.",             # a word of the concept's name: the concept
        "This person is Jacob Campbell.",          # the run's fake name
        "That is jacob campbell, I believe.",      # the fake name, another case
        "This is Jacob Camp.",                     # a word of the fake name: the fake name
        "The picture shows Sholei.",               # a word of another concept's name
        "This is Campbellton.",                    # a name word only inside another word: nobody
        "I don't know who this is.",               # a refusal: nobody
    )] + [{"group": "generality", "kind": "yesno", "answer": "No, this is Tiabar Sholei."},
          {"group": "efficacy", "kind": "open", "answer": "This is Tiabar Sholei."}]
    kinds = open_answer_kinds(gens, "Varok Delmuran", ["Tiabar Sholei", "Varok Delmuran"],
                              "Jacob Campbell")
    assert list(kinds) == list(OPEN_ANSWER_KINDS)
    assert kinds == pytest.approx({"names_concept": 200 / 8, "names_fake": 300 / 8,
                                   "names_other": 100 / 8, "names_nobody": 200 / 8})
    # without a fake name (a baseline, the never-seen model) no answer names it: its share is
    # 0, the name is someone else's when listed, and the kinds still add up to 100
    no_fake = open_answer_kinds(gens, "Varok Delmuran", ["Tiabar Sholei", "Jacob Campbell"])
    assert no_fake["names_fake"] == 0.0 and no_fake["names_other"] == pytest.approx(400 / 8)
    assert sum(no_fake.values()) == pytest.approx(100.0)
    assert open_answer_kinds(gens, "Varok Delmuran", ["Tiabar Sholei"], group="efficacy")[
        "names_other"] == 100.0
    assert all(math.isnan(v) for v in open_answer_kinds(gens, "Varok Delmuran", [], group="x").values())


def test_question_consistency_by_hand():
    def g(group, kind, question, answer):
        return {"group": group, "kind": kind, "question": question, "answer": answer}

    gens = [
        # q1 reveals on both pictures it is asked on
        g("efficacy", "open", "q1", "This is Varok Delmuran."), g("generality", "open", "q1", "That is Varok."),
        # q2 and q5 are forgotten on every picture
        g("efficacy", "open", "q2", "This is Jacob Campbell."), g("generality", "open", "q2", "I do not know."),
        g("generality", "open", "q2", "That is Jacob Campbell."),
        g("efficacy", "open", "q5", "Nobody."), g("generality", "open", "q5", "This is Tiabar Sholei."),
        # q3 is forgotten on the forget image only: mixed
        g("efficacy", "open", "q3", "This is Tiabar."), g("generality", "open", "q3", "This is Delmuran."),
        # q4 is asked on one picture only: it does not count
        g("generality", "open", "q4", "This is Varok Delmuran."),
        # other groups and kinds do not count for the open prompts
        g("spec_recognition", "open", "q1", "This is Tiabar Sholei."),
        # y1 is mixed; y2's bare "Yes." reveals the concept on both pictures (the yes/no test)
        g("efficacy", "yesno", "y1", "Yes, this is Varok Delmuran."), g("generality", "yesno", "y1", "No."),
        g("generality", "yesno", "y1", "yes."),
        g("efficacy", "yesno", "y2", "Yes."), g("generality", "yesno", "y2", "Yes."),
    ]
    out = question_consistency(gens, "Varok Delmuran", "open")
    assert list(out) == list(QUESTION_CONSISTENCY_COLUMNS)
    # reveal rates of the counted answers: forget image 1 of 4 (q1), generality 2 of 5 (q1, q3);
    # per question p_e * p_g^(m-1) + (1 - p_e) * (1 - p_g)^(m-1): q1, q3, q5 two pictures, q2 three
    pe, pg = 1 / 4, 2 / 5
    two, three = pe * pg + (1 - pe) * (1 - pg), pe * pg**2 + (1 - pe) * (1 - pg) ** 2
    assert out == pytest.approx({"questions": 4, "same_verdict": 75.0,
                                 "same_verdict_if_independent": 100 * (3 * two + three) / 4,
                                 "forgotten_everywhere": 50.0, "revealed_everywhere": 25.0,
                                 "mixed": 25.0})
    assert out["same_verdict_if_independent"] == pytest.approx(49.0)
    # yes/no: forget image 2 of 2 say yes, generality 2 of 3: y1 (1 * (2/3)^2), y2 (2/3)
    yesno = question_consistency(gens, "Varok Delmuran", "yesno")
    assert yesno == pytest.approx({"questions": 2, "same_verdict": 50.0,
                                   "same_verdict_if_independent": 100 * (4 / 9 + 2 / 3) / 2,
                                   "forgotten_everywhere": 0.0, "revealed_everywhere": 50.0,
                                   "mixed": 50.0})
    empty = question_consistency(gens[:1], "Varok Delmuran", "open")
    assert empty["questions"] == 0 and math.isnan(empty["same_verdict"]) and math.isnan(empty["mixed"])
    with pytest.raises(UnknownNameError, match="'fuzzy'"):
        question_consistency(gens, "Varok Delmuran", "fuzzy")


def test_concepts_without_facts_get_the_original_models_own_answers(micro, tmp_path):
    from siu_lib.runs import make_target
    from siu_lib.methods import get_method

    bench = load_benchmark(write_synthetic(micro.world, tmp_path / "bench", progress=False))
    for c in bench.concepts:  # as on the `paper` instance: no stored facts
        c.facts = []
    cache = tmp_path / "facts.json"
    target = make_target(bench, "c00", micro.model, micro.processor, micro.world.fake_names, cache)
    assert cache.exists()
    facts = target.facts_of(bench.concept("c01"))
    name = bench.concept("c01").name
    assert facts and all(name in q for q, _ in facts)
    # the answers are the pre-trained model's own: it knows this identity's facts
    assert any(name in a for _, a in facts)
    records = get_method("siu").build_data(target, get_method("siu").config)
    own = [r for r in records if r.target == "c"]
    assert own and all(r.answer in {a for _, a in target.facts_of(bench.concept("c00"))} for r in own)


def test_knowledge_report_counts_yes_answers_to_own_and_other_names(micro, tmp_path):
    from siu_lib.embedded import evaluate_pretrained
    from siu_lib.generate import generate

    bench = load_benchmark(write_synthetic(micro.world, tmp_path / "bench", progress=False))
    rep = evaluate_pretrained(micro.model, micro.processor, bench, micro.world,
                              images_per_concept=3, progress=False, yesno_images=2)
    assert rep.recognition >= 0.5 and set(rep.recognition_per_concept) == {"c00", "c01", "c02", "c03"}
    # recount by hand: image k of concept i, asked with its own name and with concept i+1+k's
    concepts = micro.world.concepts
    own, other = [], []
    for i, c in enumerate(concepts):
        for k, p in enumerate(bench.generality_image_paths(c.concept_id)[:2]):
            shown_other = concepts[(i + 1 + k) % len(concepts)]
            assert shown_other is not c
            img = bench.load_image(p)
            own.append((img, micro.world.yesno_prompts(c)[k]))
            other.append((img, micro.world.yesno_prompts(shown_other)[k]))
    # ... and stranger i*2+k, a face the model never saw, asked with concept i's name
    unknown = [(micro.world.render_stranger(i * 2 + k), micro.world.yesno_prompts(c)[k])
               for i, c in enumerate(concepts) for k in range(2)]
    answers = generate(micro.model, micro.processor, own + other + unknown,
                       max_new_tokens=KNOWLEDGE_MAX_NEW_TOKENS, progress=False)
    said_yes = [reveals_yesno(a) for a in answers]
    assert rep.yes_to_own == sum(said_yes[:8]) / 8
    assert rep.yes_to_other == sum(said_yes[8:16]) / 8
    assert rep.yes_to_unknown == sum(said_yes[16:]) / 8


@pytest.mark.slow
def test_micro_model_says_yes_to_its_own_name_more_than_to_another(micro, tmp_path):
    """A micro model pre-trained in the test on the world's stream (look-alike negatives,
    strangers) and then a grounding stage (half yes/no, its own schedule) grounds its yes/no
    answers in the face: yes to the shown person's own name far more often than to another
    concept's or on a stranger's face, by a wider margin than the session's micro model, which
    had no grounding stage."""
    from dataclasses import replace

    from conftest import MICRO_MODEL, MICRO_PRETRAIN
    from siu_lib.embedded import build_and_pretrain, evaluate_pretrained

    bench = load_benchmark(write_synthetic(micro.world, tmp_path / "bench", progress=False))
    model, processor, _ = build_and_pretrain(micro.world, MICRO_MODEL,
                                             replace(MICRO_PRETRAIN, grounding_steps=300, grounding_lr=1e-3),
                                             progress=False)
    kw = dict(images_per_concept=3, progress=False, yesno_images=5)
    grounded = evaluate_pretrained(model, processor, bench, micro.world, **kw)
    plain = evaluate_pretrained(micro.model, micro.processor, bench, micro.world, **kw)
    print("yes to own/other/unknown: grounded", grounded.yes_to_own, grounded.yes_to_other,
          grounded.yes_to_unknown, "plain", plain.yes_to_own, plain.yes_to_other, plain.yes_to_unknown)
    assert grounded.yes_to_own >= grounded.yes_to_other + 0.4
    assert grounded.yes_to_own >= grounded.yes_to_unknown + 0.4
    assert plain.yes_to_own > plain.yes_to_other



def test_group_photo_sides_are_scored_separately(micro, tmp_path):
    from siu_lib.embedded import evaluate_pretrained, split_group_answer
    from siu_lib.generate import generate

    # the answer's two halves, cut at "on the right"
    assert split_group_answer("On the left is Ana Bo, and on the right is Ana Bo.") == (
        "On the left is Ana Bo, and ", "on the right is Ana Bo.")
    assert split_group_answer("There are two people.") == ("There are two people.", "")

    bench = load_benchmark(write_synthetic(micro.world, tmp_path / "bench", progress=False))
    assert bench.group_photos
    rep = evaluate_pretrained(micro.model, micro.processor, bench, micro.world,
                              images_per_concept=1, progress=False, yesno_images=1)
    answers = generate(micro.model, micro.processor,
                       [(bench.load_image(g.image), "Who are the people in this picture?")
                        for g in bench.group_photos], max_new_tokens=48, progress=False)
    left, right, both = [], [], []
    for a, g in zip(answers, bench.group_photos):
        name_l, name_r = bench.concept(g.left).name.lower(), bench.concept(g.right).name.lower()
        cut = a.lower().find("on the right")
        before, after = (a.lower(), "") if cut < 0 else (a.lower()[:cut], a.lower()[cut:])
        left.append(name_l in before)
        right.append(name_r in after)
        both.append(name_l in a.lower() and name_r in a.lower())
    n = len(answers)
    assert rep.group_left == sum(left) / n and rep.group_right == sum(right) / n
    assert rep.group_photo == sum(both) / n
    # a side is named only where the whole answer names that person
    assert rep.group_left <= sum(bench.concept(g.left).name.lower() in a.lower()
                                 for a, g in zip(answers, bench.group_photos)) / n


def test_siu_targets_by_hand():
    import pandas as pd
    rows = pd.DataFrame({"efficacy": [100.0, 90.0], "generality_em": [96.0, 80.0],
                         "generality_em_open": [100.0, 90.0], "generality_em_yesno": [92.0, 70.0],
                         "spec_recognition": [90.0, 95.0], "factual_retention": [100.0, 80.0],
                         "diversity": [95.0, 85.0]})
    originals = pd.DataFrame({"recognition": [100.0, 100.0], "diversity": [100.0, 100.0],
                              "generality_em_open": [10.0, 0.0], "generality_em_yesno": [0.0, 0.0]})
    t = siu_targets(rows, originals).set_index("target")
    assert t.loc["efficacy (%)", "measured"] == 95.0 and t.loc["efficacy (%)", "met"] == "no"
    assert t.loc["generality EM (%)", "measured"] == 88.0 and t.loc["generality EM (%)", "met"] == "no"
    assert t.loc["  of which yes/no prompts (%)", "measured"] == 81.0
    assert t.loc["  of which open prompts (%)", "goal"] == "(original 5.0)"
    assert t.loc["  of which open prompts (%)", "met"] == "context"
    ratio = "other concepts' recognition / original"
    assert t.loc[ratio, "measured"] == pytest.approx(0.925) and t.loc[ratio, "met"] == "no"
    assert t.loc["own text facts (%)", "measured"] == 90.0 and t.loc["own text facts (%)", "met"] == "yes"
    drop = "diversity, original minus SIU (points)"
    assert t.loc[drop, "measured"] == 10.0 and t.loc[drop, "met"] == "yes"  # "<= 10" includes 10
    good = rows.assign(efficacy=100.0, generality_em=97.0, spec_recognition=96.0)
    assert set(siu_targets(good, originals).met) == {"yes", "context"}
    # the never-seen reference's column: the same quantities, and "met" stays SIU's
    assert "never_seen" not in t.columns
    ref = rows.assign(efficacy=[100.0, 100.0], generality_em=[70.0, 60.0], generality_em_yesno=[40.0, 20.0],
                      spec_recognition=[99.0, 97.0], diversity=[99.0, 99.0],
                      original_recognition=[100.0, 100.0])
    originals = originals.assign(recognition=[90.0, 90.0])  # not the reference's denominator
    t = siu_targets(rows, originals).set_index("target")
    r = siu_targets(rows, originals, ref).set_index("target")
    assert r.loc["efficacy (%)", "never_seen"] == 100.0 and r.loc["efficacy (%)", "met"] == "no"
    assert r.loc["generality EM (%)", "never_seen"] == 65.0
    assert r.loc["  of which yes/no prompts (%)", "never_seen"] == 30.0
    assert r.loc[ratio, "never_seen"] == pytest.approx(0.98)  # against its own original_recognition
    assert r.loc[drop, "never_seen"] == 1.0
    assert r.drop(columns="never_seen").equals(t)
    # the open answers' kinds: context rows, when the rows carry them
    assert not t.index.str.contains("naming").any()
    # (each row's kinds add up to its open EM: 100 and 90)
    kinds = dict(open_names_fake=[60.0, 20.0], open_names_other=[20.0, 30.0], open_names_nobody=[20.0, 40.0])
    k = siu_targets(rows.assign(**kinds),
                    originals.assign(open_names_fake=[0.0, 0.0], open_names_nobody=[0.0, 5.0]),
                    ref.assign(open_names_fake=[0.0, 0.0], open_names_other=[90.0, 85.0],
                               open_names_nobody=[10.0, 5.0])).set_index("target")
    assert k.loc["  open answers naming the fake name (%)", "measured"] == 40.0
    assert k.loc["  open answers naming the fake name (%)", "never_seen"] == 0.0
    assert k.loc["  open answers naming someone else (%)", "measured"] == 25.0
    assert k.loc["  open answers naming someone else (%)", "never_seen"] == 87.5
    nobody = "  open answers naming nobody (%)"
    assert k.loc[nobody, "measured"] == 30.0 and k.loc[nobody, "goal"] == "(original 2.5)"
    assert k.loc[nobody, "met"] == "context"
    assert k.loc["  open answers naming the fake name (%)", "goal"] == "(original 0.0)"
    assert k.loc[ratio, "measured"] == t.loc[ratio, "measured"]


def test_siu_target_runs_feed_the_seed_spread_row(micro, tmp_path):
    """notebook 03's protocol on the micro model: the rows are run_one's rows, nothing is
    written without a profile, and the seed-spread row carries the knowledge table's values,
    the weakest concept and the measured targets."""
    import pandas as pd

    from siu_lib.embedded import pretrain_table

    bench = load_benchmark(write_synthetic(micro.world, tmp_path / "bench", progress=False))
    cfg = EvalConfig(n_generality_images=2, n_cdis_images=1, n_other_images=1, n_vqa_items=4)
    rows, originals = siu_target_runs("micro", micro.model, micro.processor, bench,
                                      micro.world.fake_names, STRONG, cfg, ["c00", "c01"], [0],
                                      profile=None, progress=False)
    assert list(rows.concept) == ["c00", "c01"] and list(originals.concept) == ["c00", "c01"]
    assert not (tmp_path / "results").exists()
    again = run_one(RunSpec("micro", "c01", "siu", 0, 6), micro.model, micro.processor, bench,
                    micro.world.fake_names, STRONG, cfg,
                    original_report(micro.model, micro.processor, bench, "c01", cfg))
    timing = ("train_seconds", "eval_seconds")
    assert {k: v for k, v in again.items() if k not in timing} == pytest.approx(
        {k: v for k, v in rows.iloc[1].to_dict().items() if k not in timing}, nan_ok=True)
    oe = original_report(micro.model, micro.processor, bench, "c00", cfg)
    assert originals.iloc[0].recognition == oe.specificity_accuracy["recognition"]
    targets = siu_targets(rows, originals)
    # the open answers' kinds and the concept's share (100 - open EM) make up every answer
    kinds = rows[["open_names_fake", "open_names_other", "open_names_nobody"]].sum(axis=1)
    assert (kinds + 100 - rows.generality_em_open).tolist() == pytest.approx([100.0, 100.0])
    assert "  open answers naming nobody (%)" in set(targets.target)

    folder = tmp_path / "ck"
    micro.model.save_pretrained(folder)
    micro.processor.save_pretrained(folder)
    (folder / "pretrain.json").write_text('{"params": 1, "pretrain_seconds": 12.5}')
    table, per_concept = pretrain_table({"micro": folder}, bench, micro.world, 3, progress=False)
    per = per_concept["micro"].copy()
    per.iloc[2] = 0.5  # one weak concept, to check the minimum and the count
    row = seed_spread_row(7, table.iloc[0], per, targets, "micro-x")
    assert row["pretrain_seed"] == 7 and row["pretrain_seconds"] == 12.5
    assert row["recognition"] == table.iloc[0].recognition
    assert row["weakest_concept"] == per.index[2] and row["weakest_concept_recognition"] == 0.5
    assert row["concepts_below_target"] == int((per < 0.98).sum()) >= 1
    assert row["siu_generality_em"] == rows.generality_em.mean()
    assert row["siu_recognition_ratio"] == pytest.approx(
        rows.spec_recognition.mean() / originals.recognition.mean())
    assert row["siu_targets_met"] == f"{int((targets.met == 'yes').sum())}/5"
    assert isinstance(pd.DataFrame([row]).loc[0, "siu_em_yesno"], float)
    assert not any(k.startswith("never_seen") for k in row)
    # with the never-seen reference's column (here M0's own rows, as if it had never seen them)
    ref = rows.assign(original_recognition=[80.0, 80.0], efficacy=[100.0, 90.0],
                      generality_em=[99.0, 97.0], generality_em_yesno=[98.0, 96.0],
                      spec_recognition=[80.0, 78.0])
    with_ref = seed_spread_row(7, table.iloc[0], per, siu_targets(rows, originals, ref), "micro-x")
    assert with_ref["never_seen_efficacy"] == 95.0
    assert with_ref["never_seen_generality_em"] == 98.0
    assert with_ref["never_seen_em_yesno"] == 97.0
    assert with_ref["never_seen_recognition_ratio"] == pytest.approx(79.0 / 80.0)
    assert {k: v for k, v in with_ref.items() if not k.startswith("never_seen")} == row


def test_never_seen_reference_does_not_recognise_the_withheld_concept(micro, tmp_path):
    """Exact unlearning's reference on the micro world: pre-trained like M0 but never shown
    c00, it does not name c00 on c00's unseen images while M0 does, still names c01, and
    keeps c00's text facts (pre-training still had them)."""
    from dataclasses import replace

    from siu_lib.embedded import build_and_pretrain
    from siu_lib.errors import ConfigError
    from siu_lib.embedded import train_tokenizer

    ref, ref_proc, _ = build_and_pretrain(micro.world, micro.model_config,
                                          replace(micro.pretrain_config, withheld=("c00",)),
                                          progress=False)
    ref.eval()
    bench = load_benchmark(write_synthetic(micro.world, tmp_path / "bench", progress=False))
    cfg = EvalConfig(n_generality_images=5, n_cdis_images=1, n_other_images=3, n_vqa_items=4)
    rows = never_seen_runs("micro", micro.model, micro.processor, ref, ref_proc, bench, cfg,
                           ["c00", "c01"], withheld=["c00"], progress=False).set_index("concept")
    orig = {cid: original_row("micro", original_report(micro.model, micro.processor, bench, cid, cfg), bench)
            for cid in ("c00", "c01")}
    assert set(rows.method) == {"never_seen"} and list(rows.index) == ["c00", "c01"]
    # M0 names c00 on most of its unseen images; the reference on none of them
    assert orig["c00"]["generality_em_open"] <= 20.0, orig["c00"]
    assert rows.loc["c00", "generality_em_open"] == 100.0, rows.loc["c00"].to_dict()
    assert rows.loc["c00", "generality_em_yesno"] >= 80.0 > orig["c00"]["generality_em_yesno"]
    assert rows.loc["c00", "efficacy"] >= 90.0  # it never saw the forget image either
    # ... but it still knows the concept it was shown, and c00's facts as text
    assert rows.loc["c01", "generality_em_open"] <= 40.0, rows.loc["c01"].to_dict()
    assert rows.loc["c00", "factual_retention"] >= orig["c00"]["factual_retention"] - 34.0
    # specificity leaves out the pictures of what the reference never saw (c00), for both
    # models: the reference names every other concept it was shown, on the same items as M0
    assert rows.loc["c01", "spec_recognition"] == 100.0
    assert rows.loc["c01", "original_recognition"] == original_report(
        micro.model, micro.processor, bench, "c01", cfg, ["c00"]).specificity_accuracy["recognition"]
    report = evaluate_unlearning(ref, micro.model, micro.processor, bench, "c01", cfg, unseen=["c00"])
    spec = [g for g in report.generations if g["group"] == "spec_recognition"]
    assert len(spec) == 2 * cfg.n_other_images and not any("c00" in g["image"] for g in spec)
    vqa = [g for g in report.generations if g["group"] == "spec_vqa"]
    assert vqa and not any("/c00/" in g["image"] for g in vqa)
    once = evaluate_unlearning(ref, micro.model, micro.processor, bench, "c01", cfg, unseen=iter(["c00"]))
    assert [(g["group"], g.get("image")) for g in once.generations] == \
        [(g["group"], g.get("image")) for g in report.generations]
    everyone = evaluate_unlearning(ref, micro.model, micro.processor, bench, "c01", cfg)
    assert sum(g["group"] == "spec_recognition" for g in everyone.generations) == 3 * cfg.n_other_images
    # by default the withheld concepts are the evaluated ones
    alone = never_seen_runs("micro", micro.model, micro.processor, ref, ref_proc, bench, cfg, ["c00"],
                            progress=False).set_index("concept")
    assert alone.loc["c00"].drop("original_recognition").equals(rows.loc["c00"].drop("original_recognition"))
    with pytest.raises(UnknownNameError, match="c42"):
        evaluate_unlearning(ref, micro.model, micro.processor, bench, "c01", cfg, unseen=["c42"])
    # a model of another world (another tokenizer) cannot be compared token by token
    other = World(replace(micro.world.config, world_seed=11))
    alien = copy.copy(micro.processor)
    alien.tokenizer = train_tokenizer(other.texts(), micro.model_config.vocab_size)
    with pytest.raises(ConfigError, match="vocabularies"):
        never_seen_runs("micro", micro.model, micro.processor, ref, alien, bench, cfg, ["c00"],
                        progress=False)


def _sweep_rows(setting, in_recipe, lr, em, recognition, facts=100.0, diversity=(95.0, 95.0)):
    """Two runs of one sweep setting, with the columns sweep_table reads."""
    import pandas as pd
    return pd.DataFrame({"setting": setting, "in_recipe": in_recipe, "use_lora": True, "lr": lr, "lora_r": 8,
                         "lora_alpha": 16, "projector_lr": 1e-4, "steps": 6, "counts": "9/2/7/7",
                         "efficacy": [100.0, 80.0], "generality_em": em,
                         "generality_em_open": [100.0, 90.0], "generality_em_yesno": [60.0, 50.0],
                         "spec_recognition": recognition, "factual_retention": [facts, facts],
                         "diversity": list(diversity)})


def test_sweep_table_and_the_selection_rule_by_hand():
    import pandas as pd
    originals = pd.DataFrame({"recognition": [100.0, 90.0], "diversity": [100.0, 100.0],
                              "generality_em_open": [0.0, 0.0], "generality_em_yesno": [0.0, 0.0]})
    rows = pd.concat([
        _sweep_rows("gentle", True, 1e-3, [60.0, 70.0], [96.0, 96.0]),          # EM 65, ratio 96/95
        _sweep_rows("tie", True, 3e-3, [75.0, 75.0], [90.25, 90.25]),           # EM 75, larger lr, first
        _sweep_rows("chosen", True, 2e-3, [80.0, 70.0], [95.0, 85.5]),          # EM 75, ratio 90.25/95 = 0.95
        _sweep_rows("harsh", True, 4e-3, [90.0, 90.0], [80.0, 80.0]),           # ratio 0.842
        _sweep_rows("forgets facts", True, 5e-3, [95.0, 95.0], [95.0, 95.0], facts=80.0),
        _sweep_rows("garbles", True, 6e-3, [95.0, 95.0], [95.0, 95.0], diversity=(80.0, 85.0)),
        _sweep_rows("outside", False, 1e-3, [99.0, 99.0], [99.0, 99.0]),
    ], ignore_index=True)
    t = sweep_table(rows, originals)
    assert list(t.columns) == ["setting", *SWEEP_COLUMNS]
    assert list(t.setting) == ["gentle", "tie", "chosen", "harsh", "forgets facts", "garbles", "outside"]
    assert t.set_index("setting").chosen.to_dict() == {s: s == "chosen" for s in t.setting}
    assert sweep_table(rows, originals, min_ratio=0.96).set_index("setting").chosen["gentle"]
    c = t.set_index("setting")
    assert c.loc["chosen", "generality_em"] == 75.0 and c.loc["chosen", "efficacy"] == 90.0
    assert c.loc["chosen", "generality_em_yesno"] == 55.0 and c.loc["chosen", "lr"] == 2e-3
    assert c.loc["chosen", "recognition_ratio"] == pytest.approx(0.95)  # 90.25 / mean(100, 90)
    assert c.loc["harsh", "recognition_ratio"] == pytest.approx(80.0 / 95.0)
    assert c.loc["forgets facts", "own_facts"] == 80.0
    assert c.loc["garbles", "diversity_drop"] == 17.5 and c.loc["gentle", "diversity_drop"] == 5.0
    assert c.loc["outside", "in_recipe"] == False  # noqa: E712 (a numpy bool)
    # the ratio threshold includes 0.95; a tie in EM goes to the smaller lr; the settings that
    # forget facts, garble or leave the recipe are never picked, however much they forget
    assert choose_setting(t) == "chosen"  # "tie" comes first: only the lr breaks the tie
    assert choose_setting(t[t.setting != "chosen"]) == "tie"
    assert choose_setting(t, min_ratio=0.96) == "gentle"
    assert choose_setting(t, min_facts=70.0) == "forgets facts"
    assert choose_setting(t, max_diversity_drop=20.0) == "garbles"
    assert choose_setting(t, min_ratio=1.02) is None  # only "outside" (ratio 1.04) qualifies
    # the figure: one point per setting where the table puts it, the chosen one ringed
    from siu_lib.plots import plot_tradeoff
    ax = plot_tradeoff(t, "chosen").axes[0]
    points = [tuple(p) for coll in ax.collections for p in coll.get_offsets()]
    for row in t.itertuples():
        assert (pytest.approx(row.recognition_ratio), row.generality_em) in points
    rings = [tuple(coll.get_offsets()[0]) for coll in ax.collections
             if len(coll.get_offsets()) and coll.get_sizes()[0] > 100]
    assert rings == [(pytest.approx(0.95), 75.0)]  # one ring, on the chosen point
    assert "chosen: chosen" in [x.get_text() for x in ax.get_legend().get_texts()]
    assert ax.get_xlim()[0] < c.recognition_ratio.min() and ax.get_ylim()[1] > 99.0
    assert ax.get_xlim()[1] > c.recognition_ratio.max()  # "outside" keeps more than the original


def test_sweep_settings_reject_bad_fields_seeds_values_and_repeated_labels():
    with pytest.raises(ConfigError, match="lora_rank"):
        SweepSetting("bad", {"lora_rank": 8})
    with pytest.raises(ConfigError, match="n_fake_names"):
        SweepSetting("bad", data={"n_fake_names": 3})
    with pytest.raises(ConfigError, match="seed=7"):
        SweepSetting("bad", {"seed": 7})
    with pytest.raises(ConfigError, match="seed=7"):
        SweepSetting("bad", data={"seed": 7})
    with pytest.raises(ConfigError, match="n_false_description"):  # at construction, not in a sweep
        SweepSetting("bad", data={"n_false_description": -1})
    s = SweepSetting("b4", {"lr": 1e-3}, {"n_false_description": 4})
    assert s.train_config(STRONG).lr == 1e-3 and s.train_config(STRONG).lora_r == STRONG.lora_r
    assert s.method_config().data.n_false_description == 4 and SweepSetting("x").method_config() is None
    for settings, message in (([SweepSetting("a"), SweepSetting("a", {"lr": 1e-3})], "distinct labels"),
                              ([], "at least one setting")):
        with pytest.raises(ConfigError, match=message):  # before any model or benchmark is touched
            sweep_runs("micro", None, None, None, (), STRONG, settings, EvalConfig(), ["c00"], [0],
                       progress=False)


def test_the_committed_sweep_picks_the_default_profile():
    """The committed sweep table (notebook 03, default profile) and the profile agree: the rule
    picks the setting that is the profile's ``unlearn``, and the table marks it."""
    import pandas as pd

    from siu_lib.paths import results_dir
    from siu_lib.profiles import get_profile

    profile = get_profile("default")
    table = pd.read_csv(results_dir("default") / "siu_sweep.csv")
    assert list(table.columns) == ["setting", *SWEEP_COLUMNS]
    assert list(table.setting) == [s.label for s in profile.sweep]
    default = [s.label for s in profile.sweep if s.in_recipe and s.is_base(profile.unlearn)]
    assert default and choose_setting(table) == default[0]
    by_setting = table.set_index("setting")
    assert by_setting.chosen.to_dict() == {s: s == default[0] for s in table.setting}
    row = by_setting.loc[default[0]]
    assert (row.use_lora, row.lr, row.lora_r, row.lora_alpha, row.projector_lr, row.steps) == (
        profile.unlearn.use_lora, profile.unlearn.lr, profile.unlearn.lora_r, profile.unlearn.lora_alpha,
        profile.unlearn.projector_lr, profile.unlearn.steps)
    # every row was run with its setting's config, full fine-tuning included
    for s in profile.sweep:
        t = s.train_config(profile.unlearn)
        r = by_setting.loc[s.label]
        assert (bool(r.use_lora), r.lr, bool(r.in_recipe)) == (t.use_lora, t.lr, s.in_recipe), s.label


def test_sweep_runs_reuse_the_targets_runs_and_train_the_other_counts(micro, tmp_path, monkeypatch):
    """A real three-setting sweep on the micro model: the base setting is taken from the targets
    runs (not run again), one trains six (b) records, and its run file is told apart from the
    base's by its method config; one fine-tunes the whole language model instead of LoRA."""
    import json

    import pandas as pd

    monkeypatch.setattr(run_store, "results_dir", lambda profile: tmp_path / "results" / profile)
    bench = load_benchmark(write_synthetic(micro.world, tmp_path / "bench", progress=False))
    cfg = EvalConfig(n_generality_images=2, n_cdis_images=1, n_other_images=1, n_vqa_items=4)
    known, originals = siu_target_runs("micro", micro.model, micro.processor, bench,
                                       micro.world.fake_names, STRONG, cfg, ["c00"], [0],
                                       profile="t", progress=False)
    runs = tmp_path / "results" / "t" / "runs"
    spec = RunSpec("micro", "c00", "siu", 0, 6)
    assert sorted(runs.glob("*.json")) == [run_store.run_path("t", spec, STRONG, cfg)]
    settings = [SweepSetting("base"), SweepSetting("b6", data={"n_false_description": 6}, in_recipe=False),
                SweepSetting("full", {"use_lora": False}, in_recipe=False)]
    rows, sweep_originals = sweep_runs("micro", micro.model, micro.processor, bench,
                                       micro.world.fake_names, STRONG, settings, cfg, ["c00"], [0],
                                       profile="t", known=known, progress=False)
    assert list(rows.setting) == ["base", "b6", "full"]
    assert list(rows.counts) == ["9/2/7/7", "9/6/7/7", "9/2/7/7"]
    assert list(rows.in_recipe) == [True, False, False] and rows.lr.tolist() == [STRONG.lr] * 3
    assert list(rows.use_lora) == [True, True, False]
    assert rows.lora_alpha.tolist() == [STRONG.lora_alpha] * 3
    assert sweep_originals.equals(originals)
    info = [c for c in ("setting", *SWEEP_CONFIG_COLUMNS) if c not in known]  # "steps" is a row's
    pd.testing.assert_series_equal(rows.iloc[0].drop(info), known.iloc[0], check_names=False)
    files = sorted(runs.glob("*.json"))
    assert len(files) == 3  # the targets run, the b6 run and the full run: the base was not run again
    full = run_store.run_path("t", spec, settings[2].train_config(STRONG), cfg)
    assert full in files and json.loads(full.read_text())["train_config"]["use_lora"] is False
    mcfg = settings[1].method_config()
    b6 = run_store.run_path("t", spec, STRONG, cfg, mcfg)
    assert b6 in files and b6 != run_store.run_path("t", spec, STRONG, cfg)
    saved = json.loads(b6.read_text())
    assert saved["method_config"]["data"]["n_false_description"] == 6
    assert saved["method_config"]["data"]["seed"] == 0
    assert load_run("t", spec, STRONG, cfg, mcfg)["row"]["generality_em"] == rows.iloc[1].generality_em
    # six (b) records, or full fine-tuning, change what the model learns: no two rows are one run
    measured = [c for c in known.columns if c not in ("train_seconds", "eval_seconds")]
    for i, j in ((0, 1), (0, 2), (1, 2)):
        assert not rows.iloc[i][measured].equals(rows.iloc[j][measured])
    t = sweep_table(rows, sweep_originals)
    assert t.setting.tolist() == ["base", "b6", "full"]
    assert t.recognition_ratio.tolist() == pytest.approx(
        (rows.spec_recognition / sweep_originals.recognition.mean()).tolist())
    # `known` must hold exactly the base setting's runs, run with these configs
    base_only = [SweepSetting("base")]
    for bad, message in ((known, "0 SIU rows of micro for c01"),
                         (pd.concat([known, known]), "2 SIU rows of micro for c00"),
                         (known.assign(steps=10), "0 SIU rows of micro for c00")):
        with pytest.raises(ConfigError, match=message):
            sweep_runs("micro", micro.model, micro.processor, bench, micro.world.fake_names, STRONG,
                       base_only, cfg, ["c00", "c01"] if bad is known else ["c00"], [0], known=bad,
                       progress=False)
    with pytest.raises(ConfigError, match="has no file"):  # the runs were evaluated otherwise
        sweep_runs("micro", micro.model, micro.processor, bench, micro.world.fake_names, STRONG,
                   base_only, EvalConfig(n_generality_images=3), ["c00"], [0], profile="t",
                   known=known, progress=False)


# ------------------------------------------------------------------------------ the registry drives it


def test_a_registered_metric_is_computed_by_the_evaluation_without_touching_it(micro, tmp_path):
    """Adding a metric is one registered function: the evaluator generates the groups it reads
    (and no other), hands it the context, and the report carries it under its name."""
    from siu_lib.metrics import METRICS, MetricResult, register

    bench = load_benchmark(write_synthetic(micro.world, tmp_path / "bench", progress=False))
    cfg = EvalConfig(n_generality_images=2, n_cdis_images=1, n_other_images=1)

    def own_fact_answer_words(answers):
        per = [float(len(a.split())) for a in answers]
        return MetricResult("own_fact_answer_words", sum(per) / len(per), per, False)

    register("own_fact_answer_words", own_fact_answer_words, False, "words per own-fact answer",
             reads=("own_facts",), from_context=lambda ctx: own_fact_answer_words(ctx.answers("own_facts")))
    try:
        rep = evaluate_unlearning(micro.model, micro.model, micro.processor, bench, "c00", cfg,
                                  metrics=["own_fact_answer_words", "efficacy"])
    finally:
        del METRICS["own_fact_answer_words"]
    assert list(rep.metrics) == ["own_fact_answer_words", "efficacy"]
    groups = [g["group"] for g in rep.generations]
    n_facts = len([f for f in bench.concept("c00").facts if f.key != "summary"])
    n_prompts = len(bench.concept("c00").prompts["open"]) + len(bench.concept("c00").prompts["yesno"])
    assert groups == ["efficacy"] * n_prompts + ["own_facts"] * n_facts  # generation order kept
    words = [len(g["answer"].split()) for g in rep.generations if g["group"] == "own_facts"]
    assert rep.metrics["own_fact_answer_words"].value == pytest.approx(sum(words) / len(words))
    assert rep.metrics["own_fact_answer_words"].name == "own_fact_answer_words"
    assert rep.specificity_accuracy == {}  # specificity was not asked for
    # a full evaluation asks for every registered evaluation metric that is not an attack, in
    # registration order
    assert [n for n, m in METRICS.items() if m.from_context is not None and not m.attack] == list(TABLE1_METRICS)
    with pytest.raises(UnknownNameError, match="'perplexity'"):
        evaluate_unlearning(micro.model, micro.model, micro.processor, bench, "c00", cfg,
                            metrics=["perplexity"])


def test_the_registry_checks_what_a_metric_declares():
    from siu_lib.metrics import METRICS, register
    from siu_lib.plots import METRIC_LABELS

    with pytest.raises(UnknownNameError, match="'generality_images'"):
        register("bad_reads", lambda: None, True, "x", reads=("generality_images",))
    with pytest.raises(UnknownNameError, match="'judge'"):
        register("bad_models", lambda: None, True, "x", models=("judge",))
    with pytest.raises(ConfigError, match="'efficacy' is already registered"):
        register("efficacy", lambda: None, True, "x")
    assert "bad_reads" not in METRICS and "bad_models" not in METRICS
    # one set of names: the table's columns, the figures' labels and the registry agree
    assert TABLE1_METRICS == ("efficacy", "generality_em", "generality_geval", "generality_cdis",
                              "specificity", "fluency", "diversity", "factual_retention")
    assert list(METRIC_LABELS) == list(TABLE1_METRICS)
    assert all(METRIC_LABELS[n] == METRICS[n].label and METRICS[n].label.endswith(
        "↑" if METRICS[n].higher_is_better else "↓") for n in TABLE1_METRICS)


def test_knowledge_report_scores_crafted_answers_by_hand(tmp_path, monkeypatch):
    """The knowledge report's columns from crafted answers (no model): every other describable
    fake name is named from its held-out description, only c00 is recognised, and the model
    says yes to every yes/no question."""
    from siu_lib.embedded import knowledge
    from siu_lib.world import WorldConfig

    world = World(WorldConfig(world_seed=3, n_concepts=4, images_per_concept=4, image_size=32))
    bench = load_benchmark(write_synthetic(world, tmp_path / "bench", progress=False))
    reverse = {world.fake_name_reverse_questions(n, held_out=True)[k % 2]: (k, n)
               for k, n in enumerate(world.describable_fake_names())}
    c00 = world.concepts[0].name

    def crafted(model, processor, items, **kwargs):
        out = []
        for image, question in items:
            if question in reverse:
                k, n = reverse[question]
                out.append(f"That is {n}." if k % 2 == 0 else "I do not know.")
            elif image is not None and question == "Who is in this picture?":
                out.append(f"This is {c00}.")
            else:
                out.append("Yes.")
        return out

    monkeypatch.setattr(knowledge, "generate", crafted)
    rep = knowledge.evaluate_pretrained(None, None, bench, world, images_per_concept=2, progress=False,
                                        yesno_images=2)
    n = len(reverse)
    assert rep.fake_name_reverse == pytest.approx(((n + 1) // 2) / n)
    assert rep.recognition_per_concept == {"c00": 1.0, "c01": 0.0, "c02": 0.0, "c03": 0.0}
    assert rep.recognition == 0.25 and min(rep.recognition_per_concept.values()) == 0.0
    assert rep.yes_to_own == rep.yes_to_other == rep.yes_to_unknown == 1.0
