"""The attacks: scores and rates by hand, the perturbations, the non-member identities, and
every registered attack on the pre-trained micro world (the original model, a model SIU
unlearned, and the run store)."""

from __future__ import annotations

import copy
import json
import zlib

import numpy as np
import pytest
import torch

from siu_lib import runs as run_store
from siu_lib.attacks import (ATTACKS, MIA_ANSWERS, MIA_SCORES, PARAPHRASE_OPEN, PARAPHRASE_YESNO,
                             PERTURBATIONS, AttackConfig, Identity, attack_jobs, auc, available_attacks,
                             concept_identity, held_out_identities, leak_rate, membership_scores,
                             mia_items, mia_membership, min_k_prob, multihop_success, perturb, roc_points)
from siu_lib.bench import load_benchmark, write_synthetic
from siu_lib.errors import ConfigError, UnknownNameError
from siu_lib.evaluate import EvalConfig, evaluate_unlearning
from siu_lib.finetune_data import FAKE_NAME_QUESTIONS, PRESENCE_QUESTIONS
from siu_lib.generate import answer_logprobs, answer_token_stats, prompt_logprobs
from siu_lib.judges import RuleJudge
from siu_lib.models import format_prompt
from siu_lib.metrics import ATTACK_GROUPS, METRICS
from siu_lib.runs import RunSpec, attack_one, attack_path
from siu_lib.train import TrainConfig
from siu_lib.world import World, WorldConfig

#: strong enough to make the micro model stop naming the target in 6 steps (as test_evaluate)
STRONG = TrainConfig(steps=6, batch_size=4, lr=2e-2, projector_lr=1e-3, lora_r=8, lora_alpha=16,
                     lora_dropout=0.0)


# ----------------------------------------------------------------------------- by hand


def test_min_k_prob_by_hand():
    assert min_k_prob([-1.0, -2.0, -3.0, -4.0, -5.0], 0.4) == pytest.approx(-4.5)
    assert min_k_prob([-1.0, -2.0], 0.1) == pytest.approx(-2.0)  # at least one token
    assert min_k_prob([-1.0, -2.0], 1.0) == pytest.approx(-1.5)
    with pytest.raises(ConfigError):
        min_k_prob([], 0.4)


def test_membership_scores_by_hand():
    answer = "The person in the picture is Ana Bell."
    got = membership_scores(answer, torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -2.0]),
                            torch.tensor([1.0, 2.0]), k=0.5)
    assert got["loss"] == pytest.approx(-2.0)
    assert got["zlib"] == pytest.approx(-2.0 / len(zlib.compress(answer.encode())))
    assert got["min_k"] == pytest.approx(-3.0)
    assert got["min_k_pp"] == pytest.approx(-0.5)  # z = (1, -0.5): the lower half
    assert set(got) == set(MIA_SCORES)


def test_auc_and_roc_by_hand():
    assert auc([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1]) == pytest.approx(0.75)  # 3 of 4 pairs ordered
    assert auc([0, 1], [0.2, 0.2]) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="members and non-members"):
        auc([1, 1], [0.3, 0.4])
    fpr, tpr = roc_points([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], n=11)
    assert len(fpr) == len(tpr) == 11 and fpr[0] == 0.0 and fpr[-1] == 1.0
    assert np.all(tpr == 1.0)  # perfectly separated: every member before any non-member


def test_leak_rate_and_multihop_success_by_hand():
    name = "Rechir Raefla"
    got = leak_rate(["No, this is Rechir Raefla.", "Yes.", "No, this is not Rechir Raefla.",
                     "That is Raefla.", "I do not know."], ["yesno", "yesno", "yesno", "open", "open"], name)
    assert got.per_example == [100.0, 100.0, 0.0, 100.0, 0.0]
    assert got.value == pytest.approx(60.0) and got.higher_is_better is False
    hop = multihop_success(["The person in the picture is a baker.", "They live in Ostrik.", "No idea."],
                           ["baker", "Talmora", "painting a silver comet"], RuleJudge())
    assert hop.per_example == [100.0, 0.0, 0.0] and hop.value == pytest.approx(100 / 3)
    with pytest.raises(ConfigError):
        leak_rate(["a"], [], name)
    with pytest.raises(ConfigError):
        multihop_success([], [], RuleJudge())


def test_attack_config_rejects_bad_values():
    for field, value in (("mia_k", 0.0), ("mia_k", 1.5), ("mia_ratio_bound", 1.0), ("crop", 0),
                         ("mia_recall_floor", 1.0), ("noise_std", -0.1), ("mia_images", 0)):
        with pytest.raises(ConfigError, match=field):
            AttackConfig(**{field: value})


def test_perturbations_keep_the_size_and_change_what_they_say():
    rng = np.random.default_rng(0)
    image = __import__("PIL.Image", fromlist=["Image"]).fromarray(
        rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "RGB")
    cfg = AttackConfig()
    out = {k: perturb(image, k, cfg, seed=1) for k in PERTURBATIONS if k != "group"}
    for kind, img in out.items():
        assert img.size == image.size and img.mode == "RGB", kind
    pixels = {k: np.asarray(v, dtype=np.int16) for k, v in out.items()}
    original = np.asarray(image, dtype=np.int16)
    assert np.array_equal(pixels["none"], original)
    assert np.array_equal(pixels["flip"], original[:, ::-1])
    assert np.array_equal(pixels["grayscale"][..., 0], pixels["grayscale"][..., 2])
    for kind in ("crop", "noise", "resize"):
        assert np.abs(pixels[kind] - original).mean() > 1.0, kind
    noise = pixels["noise"] - original
    assert 0.5 * cfg.noise_std * 255 < noise.std() < 1.5 * cfg.noise_std * 255
    assert np.array_equal(np.asarray(perturb(image, "noise", cfg, seed=1)), np.asarray(out["noise"]))
    assert not np.array_equal(np.asarray(perturb(image, "noise", cfg, seed=2)), np.asarray(out["noise"]))
    with pytest.raises(ConfigError, match="'blur'"):
        perturb(image, "blur", cfg)


def test_every_attack_is_registered_reads_a_known_group_and_is_left_out_by_default():
    assert set(ATTACKS) == {n for n, m in METRICS.items() if m.attack}
    for name in ATTACKS:
        metric = METRICS[name]
        assert metric.higher_is_better is False and metric.from_context is not None
        assert set(metric.reads) <= set(ATTACK_GROUPS)
    assert {f"perturb_{k}" for k in PERTURBATIONS} <= set(ATTACK_GROUPS)


def test_paraphrases_are_in_no_training_or_evaluation_bank():
    world = World(WorldConfig())
    name = world.concepts[0].name
    yesno = [q.format(name=name) for q in PARAPHRASE_YESNO]
    banks = set(world.texts()) | set(FAKE_NAME_QUESTIONS) | {q.format(name=name) for q in PRESENCE_QUESTIONS}
    for c in world.concepts[:1]:
        banks |= set(world.open_prompts(c)) | set(world.yesno_prompts(c)) | set(world.multilingual_prompts(c))
    assert not (set(PARAPHRASE_OPEN) | set(yesno)) & banks
    assert all("{name}" in q for q in PARAPHRASE_YESNO)


def test_held_out_identities_are_new_people_the_world_never_names():
    world = World(WorldConfig(world_seed=0, n_concepts=20))
    held = world.held_out_identities(8)
    assert [h.concept_id for h in held] == [f"h{k:02d}" for k in range(8)]
    words = [w.lower() for h in held for w in h.name.split()]
    known = {w.lower() for c in world.concepts for w in c.name.split()}
    known |= {w.lower() for n in world.fake_names for w in n.split()}
    assert len(set(words)) == len(words) and not set(words) & known
    concept_deeds = {c.fact("deed").value for c in world.concepts}
    assert not {h.fact("deed").value for h in held} & concept_deeds
    text = " ".join(world.texts())
    assert not any(h.name in text for h in held)
    # deterministic, and the first k do not depend on how many are drawn
    again = World(WorldConfig(world_seed=0, n_concepts=20)).held_out_identities(3)
    assert [h.name for h in again] == [h.name for h in held[:3]]
    assert [h.attributes for h in again] == [h.attributes for h in held[:3]]
    people = held_out_identities(world, 2, 3)
    assert [p.name for p in people] == [h.name for h in held[:2]]
    assert len(people[0].images) == 3 and people[0].images[0].size == (64, 64)
    assert set(people[0].facts) == {"profession", "city", "deed"}
    with pytest.raises(ConfigError):
        world.held_out_identities(-1)


def test_mia_items_pair_every_prompt_with_the_name_and_each_fact():
    images = ("img0", "img1")
    person = Identity("Ana Bell", {"profession": "baker", "city": "Ostrik"}, images)
    items = mia_items(person, ["P1?", "P2?", "P3?"])
    assert len(items) == 3 * 3
    assert items[0] == ("img0", "P1?", MIA_ANSWERS["name"].format(value="Ana Bell"))
    assert items[1][2] == "The person in the picture is a baker."
    assert items[2][2] == "The person in the picture lives in Ostrik."
    assert [it[0] for it in items[::3]] == ["img0", "img1", "img0"]  # pictures in turn


# ----------------------------------------------------------------------------- on the micro world


@pytest.fixture(scope="module")
def attacked(micro, tmp_path_factory):
    """The micro world's benchmark, non-members and the original model's attack report."""
    bench = load_benchmark(write_synthetic(micro.world, tmp_path_factory.mktemp("bench"), progress=False))
    nonmembers = held_out_identities(micro.world, 4, 3)
    cfg = EvalConfig(n_generality_images=5, n_cdis_images=1, n_other_images=1, n_vqa_items=4)
    report = evaluate_unlearning(micro.model, micro.model, micro.processor, bench, "c00", cfg,
                                 metrics=ATTACKS, nonmembers=nonmembers)
    return bench, nonmembers, cfg, report


def test_scoring_helpers_agree_with_the_answer_log_probabilities(micro):
    img = micro.world.render("c00", 1)
    items = [(img, "Who is in this picture?", f"This is {micro.world.concepts[0].name}."),
             (None, "Where does Ana live?", "Ana lives in Ostrik.")]
    plain = answer_logprobs(micro.model, micro.processor, items)
    stats = answer_token_stats(micro.model, micro.processor, items)
    for lp, (lp2, mu, sigma) in zip(plain, stats):
        assert torch.allclose(lp, lp2)
        assert (mu <= 0).all() and (sigma >= 0).all() and len(mu) == len(lp)
    # the question's own tokens, found from character offsets, are the tokens between the
    # image and the assistant's turn: counted here from the tokenizer instead, on one unpadded row
    question = "Who is in this picture?"
    got = prompt_logprobs(micro.model, micro.processor, [(img, question), (None, question)])
    tok = micro.processor.tokenizer
    n_q = len(tok(question, add_special_tokens=False)["input_ids"])
    n_tail = len(tok(" ASSISTANT:", add_special_tokens=False)["input_ids"])
    assert len(got[0]) == len(got[1]) == n_q
    enc = micro.processor(images=[img], text=[format_prompt(micro.processor, question, True)], return_tensors="pt")
    with torch.no_grad():
        logits = micro.model(**enc).logits[0].float()
    ids = enc["input_ids"][0]
    positions = range(len(ids) - n_tail - n_q, len(ids) - n_tail)
    by_hand = torch.stack([torch.log_softmax(logits[t - 1], -1)[ids[t]] for t in positions])
    assert torch.allclose(got[0], by_hand, atol=1e-5)


def test_the_original_model_leaks_and_is_its_own_mia_reference(micro, attacked):
    bench, nonmembers, cfg, report = attacked
    assert set(report.metrics) == set(ATTACKS)
    # the paper protocol against itself: every prompt kept, every answer recalled in full
    rouge = report.metrics["mia_rouge"]
    assert rouge.details["n_kept"] == rouge.details["n_pairs"] == 3 * len(bench.concept("c00").prompts["mia"])
    assert rouge.value == pytest.approx(1.0)
    # the original knows c00's name and facts and has never met the non-members
    for score in MIA_SCORES:
        result = report.metrics[f"mia_auc_{score}"]
        labels = result.details["labels"]
        assert labels.count(1) == len(mia_items(concept_identity(bench.concept("c00"), ["x"]),
                                                bench.concept("c00").prompts["mia"]))
        assert labels.count(0) == 4 * labels.count(1)
    assert report.metrics["mia_auc_min_k_pp"].value > 0.8
    assert report.metrics["mia_auc_loss"].value > 0.8
    # the pre-trained model names c00 on its generality images, plain or flipped
    assert report.metrics["leak_none"].value >= 50.0
    assert report.metrics["leak_flip"].value >= 40.0
    assert report.metrics["multilingual_leak"].value >= 50.0
    for name in ATTACKS:
        assert 0.0 <= report.metrics[name].value <= 100.0, name
    groups = {g["group"] for g in report.generations}
    assert groups == set(ATTACK_GROUPS)
    n_group = sum(g["group"] == "perturb_group" for g in report.generations)
    photos = [g for g in bench.group_photos if "c00" in (g.left, g.right)]
    assert photos and n_group == 2 * len(photos)
    # a default evaluation computes no attack
    plain = evaluate_unlearning(micro.model, micro.model, micro.processor, bench, "c00", cfg)
    assert not set(plain.metrics) & set(ATTACKS)


def test_siu_run_leaks_less_and_the_run_store_keeps_it(micro, attacked, tmp_path, monkeypatch):
    bench, nonmembers, cfg, report = attacked
    monkeypatch.setattr(run_store, "results_dir", lambda profile: tmp_path / profile)
    attack_cfg = AttackConfig()
    spec = RunSpec("micro", "c00", "siu", 0, 6)
    row, rep = attack_one(spec, micro.model, micro.processor, bench, micro.world.fake_names, STRONG, cfg,
                          attack_cfg, nonmembers, profile="test")
    assert set(ATTACKS) <= set(row) and row["method"] == "siu" and row["train_seconds"] > 0
    assert row["leak_none"] < report.metrics["leak_none"].value
    assert row["mia_rouge"] < 1.0 and 0 <= row["mia_counted"] <= row["mia_kept"]
    saved = json.loads(attack_path("test", spec, STRONG, cfg, attack_cfg, len(nonmembers)).read_text())
    assert saved["row"] == pytest.approx(row, nan_ok=True)
    assert saved["nonmembers"] == [m.name for m in nonmembers] and saved["judge"] == {"kind": "rule"}
    assert saved["evaluation"]["metrics"]["mia_auc_loss"]["details"]["labels"][0] == 1
    # the original row trains nothing and scores as the original's own report
    orig, _ = attack_one(RunSpec("micro", "c00", "original", 0, 0), micro.model, micro.processor, bench,
                         micro.world.fake_names, STRONG, cfg, attack_cfg, nonmembers, profile="test")
    written = attack_path("test", RunSpec("micro", "c00", "original", 0, 0), STRONG, cfg, attack_cfg,
                          len(nonmembers))
    assert json.loads(written.read_text())["train_config"] is None
    assert orig["leak_none"] == report.metrics["leak_none"].value
    assert orig["mia_rouge"] == pytest.approx(1.0)
    with pytest.raises(UnknownNameError, match="never_seen"):
        attack_one(RunSpec("micro", "c00", "never_seen", 0, 0), micro.model, micro.processor, bench,
                   micro.world.fake_names, STRONG, cfg, attack_cfg, nonmembers)


def test_available_attacks_leave_out_what_a_concept_cannot_be_asked(micro, attacked):
    bench, nonmembers, _, _ = attacked
    bench = copy.deepcopy(bench)  # the module's benchmark stays as written
    assert available_attacks(bench, "c00", nonmembers) == ATTACKS
    without = available_attacks(bench, "c00")
    assert not any(n.startswith("mia_auc_") for n in without) and "mia_rouge" in without
    bench.concept("c01").prompts["multihop"] = []
    assert "multihop_asr" not in available_attacks(bench, "c01", nonmembers)
    jobs = attack_jobs(bench, bench.concept("c01"), [micro.world.render("c01", 1)], ["g"], AttackConfig())
    assert not any(g == "multihop" for g, *_ in jobs)
    assert sum(g == "paraphrase" for g, *_ in jobs) == 2 and sum(g == "multilingual" for g, *_ in jobs) >= 1
