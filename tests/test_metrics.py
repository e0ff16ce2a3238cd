"""Tests of siu_lib.metrics: hand-computed values on tiny crafted inputs, C-Dis and fluency on
an untrained toy LLaVA (built in a second, no pre-training needed), the registry, and a golden
file of the pure metrics.

Regenerate the golden file (only when a change of the numbers is intended) with
``python -m tests.test_metrics`` from the repository root, and say why in the commit.
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw

from siu_lib.errors import ConfigError, SIUError, UnknownNameError
from siu_lib.generate import answer_logprobs
from siu_lib.judges import RuleJudge
from siu_lib.metrics import (
    METRICS,
    MetricResult,
    aggregate,
    c_dis,
    c_dis_from_probs,
    diversity,
    exact_match_forgetting,
    factual_retention,
    fluency,
    g_eval,
    get_metric,
    reveals,
    name_occurrences,
    names_as_shown,
    reveals_open,
    reveals_yesno,
    reveals_yesno_answer,
    rouge_l_recall,
    special_token_id,
    specificity,
)
from siu_lib.models import format_example, format_prompt
from siu_lib.embedded import EmbeddedConfig, build_embedded_model, train_tokenizer

GOLDEN = Path(__file__).parent / "golden" / "metrics.json"
NAME = "Varok Delmuran"
LN2 = math.log(2.0)

# ----------------------------------------------------------------------------- crafted inputs

#: (answer, kind, reveals?) -- 6 of the 11 responses do not reveal the concept: EM = 600/11 %.
EM_CASES = [
    ("this is VAROK delmuran", "open", True),  # case-insensitive full name
    ("Yes, I think so.", "open", False),  # "yes" does not count on an open prompt
    ("I would say yes.", "open", False),
    ("Delmuran!", "open", True),  # one word of the name is enough
    ("Varokian pottery.", "open", False),  # not a whole word of the name
    ("Yes.", "yesno", True),
    ("No, it is not.", "yesno", False),
    ("  yes, that is him", "yesno", True),
    ("I am not sure, yes maybe", "yesno", False),  # does not *answer* yes
    ("No, this is Varok Delmuran.", "yesno", True),  # the "no" names the person shown as the concept
    ("No. Varok Delmuran has red hair.", "yesno", False),  # SIU's target (b): the name, not as the one shown
]
#: diversity per response: 2/4 -> 50, 3/3 -> 100, empty -> 0, case-sensitive 3/3 -> 100;
#: mean (50 + 100 + 0 + 100) / 4 = 62.5
DIVERSITY_ANSWERS = ["the cat the cat", "a b c", "", "Go go GO"]
#: contains? 100, 100, 0, 100 ("Talmoran" contains "talmora") -> 75
RETENTION = (["He lives in Talmora.", "a PAINTER", "unknown", "Talmoran"],
             ["talmora", "painter", "Osk", "Talmora"])
#: (candidate, reference, ROUGE-L recall by hand)
ROUGE_CASES = [
    ("the cat sat on the mat", "the cat is on the mat", 5 / 6),  # LCS: the cat on the mat
    ("a b c d", "d c b a", 1 / 4),  # LCS of a reversal: one token
    ("The Cat", "the cat", 1.0),  # lowercased
    ("x y z", "a b", 0.0),
    ("", "a b", 0.0),
    ("a b", "", 0.0),
    ("a x b y c", "a b c d", 3 / 4),  # LCS: a b c
]
#: accuracies 75, 50, 100 (mean 75); original 100, 80, 100 (mean 280/3);
#: ratios 0.75, 0.625, 1.0; overall 75 / (280/3) = 225/280 = 0.8035714...
SPEC_CORRECT = {
    "recognition": [True, True, False, True],
    "general_vqa": [True, False],
    "facts": [True, True, True, True, True],
}
SPEC_ORIGINAL = {"recognition": 100.0, "general_vqa": 80.0, "facts": 100.0}
#: rule-judge scores 5, 4, 2, 3, 1 -> mean 3
G_EVAL_ANSWERS = ["Varok Delmuran.", "Delmuran.", "A woman.", "Red hair, green coat.", "Soup."]
G_EVAL_CONCEPT = {"name": NAME, "attributes": {"hair_color": "red", "clothing": "green"}}


# ----------------------------------------------------------------------------- EM


@pytest.mark.parametrize("answer, kind, revealing", EM_CASES)
def test_reveals(answer, kind, revealing):
    got = reveals_open(answer, NAME) if kind == "open" else reveals_yesno_answer(answer, NAME)
    assert got is revealing


@pytest.mark.parametrize("answer, named", [
    ("No, this is Varok Delmuran.", True),
    ("No, that is Delmuran.", True),  # one word of the name is enough
    ("No, it's Varok.", True),
    ("No, the person in the picture is Varok Delmuran.", True),
    ("No, Varok Delmuran is not in the picture; this is Ruby Tam.", False),  # the asked name, then another
    ("No, this is not Varok Delmuran.", False),
    ("No, this is someone else, not Varok Delmuran.", False),
    ("No. The person in the picture does not match Varok Delmuran, who has red hair.", False),
    ("No. Varok Delmuran has red hair and wears a green shirt.", False),
    ("This is Varokian pottery.", False),  # not a whole word of the name
])
def test_names_as_shown_reads_who_the_answer_says_is_shown(answer, named):
    assert names_as_shown(answer, NAME) is named
    assert reveals_yesno_answer(answer, NAME) is named  # none of them starts with yes


def test_reveals_is_the_name_test_or_the_yes_test():
    """``reveals`` (the baselines' test of a revealing answer) is one of the two EM tests."""
    for answer, _, _ in EM_CASES:
        assert reveals(answer, "") == reveals_yesno(answer)
        assert reveals(answer, NAME) == (reveals_yesno(answer) or reveals_open(answer, NAME))
    assert reveals("Yes, that is her.", "Ruby Tam") and reveals("It is Ruby.", "Ruby Tam")
    assert not reveals("Nobody I know.", "Ruby Tam") and not reveals("The yes-man.", "Ruby Tam")
    assert reveals_open("Tam is here", "Ruby Tam")  # 3-letter words count
    assert not reveals_open("Al and Xy are here", "Al Xy")  # words of <= 2 letters do not


def test_exact_match_forgetting_by_hand():
    answers, kinds, _ = zip(*EM_CASES)
    result = exact_match_forgetting(list(answers), list(kinds), NAME)
    assert result.per_example == [0.0 if r else 100.0 for _, _, r in EM_CASES]
    assert result.value == pytest.approx(600 / 11)
    assert result.details["by_kind"] == {"open": pytest.approx(60.0), "yesno": pytest.approx(50.0)}
    assert result.higher_is_better


def test_exact_match_forgetting_rejects_bad_input():
    with pytest.raises(UnknownNameError, match="multiple_choice"):
        exact_match_forgetting(["a"], ["multiple_choice"], NAME)
    with pytest.raises(ConfigError):
        exact_match_forgetting(["a", "b"], ["open"], NAME)
    with pytest.raises(ConfigError):
        exact_match_forgetting([], [], NAME)


# ----------------------------------------------------------------------------- text metrics


def test_diversity_by_hand():
    result = diversity(DIVERSITY_ANSWERS)
    assert result.per_example == pytest.approx([50.0, 100.0, 0.0, 100.0])
    assert result.value == pytest.approx(62.5)


def test_factual_retention_by_hand():
    result = factual_retention(*RETENTION)
    assert result.per_example == [100.0, 100.0, 0.0, 100.0]
    assert result.value == pytest.approx(75.0)
    with pytest.raises(ConfigError):
        factual_retention(["a"], [])


@pytest.mark.parametrize("candidate, reference, expected", ROUGE_CASES)
def test_rouge_l_recall_by_hand(candidate, reference, expected):
    assert rouge_l_recall(candidate, reference) == pytest.approx(expected)


def test_specificity_by_hand():
    result = specificity(SPEC_CORRECT, SPEC_ORIGINAL)
    assert result.per_example == pytest.approx([75.0, 50.0, 100.0])
    assert result.value == pytest.approx(75.0)
    assert result.details["ratio"] == pytest.approx(
        {"recognition": 0.75, "general_vqa": 0.625, "facts": 1.0})
    assert result.details["ratio_overall"] == pytest.approx(225 / 280)
    assert "ratio" not in specificity(SPEC_CORRECT).details
    with pytest.raises(ConfigError, match="facts"):
        specificity(SPEC_CORRECT, {"recognition": 1.0, "general_vqa": 1.0})
    with pytest.raises(ConfigError):
        specificity({"vqa": []})
    assert math.isnan(specificity({"vqa": [True]}, {"vqa": 0.0}).details["ratio"]["vqa"])


def test_g_eval_with_rule_judge():
    result = g_eval(G_EVAL_ANSWERS, G_EVAL_CONCEPT, RuleJudge(["Ruby Tam"]))
    assert result.per_example == [5.0, 4.0, 2.0, 3.0, 1.0]
    assert result.value == pytest.approx(3.0)
    assert not result.higher_is_better

    class Broken:
        def score(self, answer, concept):
            return 7

    with pytest.raises(SIUError, match="7"):
        g_eval(["x"], NAME, Broken())


# ----------------------------------------------------------------------------- C-Dis formula


def test_c_dis_from_probs_by_hand():
    # 0.5 ln(0.5/0.25) + 0.25 ln(0.25/0.5) = 0.5 ln2 - 0.25 ln2 = 0.25 ln2
    assert float(c_dis_from_probs([0.5, 0.25], [0.25, 0.5])) == pytest.approx(0.25 * LN2)
    # 0.1 ln(0.1/0.2) = -0.1 ln2: the absolute value is taken
    assert float(c_dis_from_probs([0.1], [0.2])) == pytest.approx(0.1 * LN2)
    # p_theta = 0 is clamped to 1e-10: 0.5 (ln 0.5 - ln 1e-10)
    assert float(c_dis_from_probs([0.5], [0.0])) == pytest.approx(
        0.5 * (math.log(0.5) - math.log(1e-10)))
    # p0 = 0 is clamped too: 1e-10 (ln 1e-10 - ln 0.5), tiny but not 0
    assert float(c_dis_from_probs([0.0], [0.5])) == pytest.approx(
        1e-10 * (math.log(0.5) - math.log(1e-10)), rel=1e-9)
    # [P=2, K=2]: one value per token (column)
    both = c_dis_from_probs([[0.5, 0.3], [0.25, 0.3]], [[0.25, 0.3], [0.5, 0.3]])
    assert both.tolist() == pytest.approx([0.25 * LN2, 0.0])
    assert float(c_dis_from_probs([0.2, 0.7], [0.2, 0.7])) == 0.0
    with pytest.raises(ConfigError):
        c_dis_from_probs([0.1, 0.2], [0.1])


# ----------------------------------------------------------------------------- toy model

TOY = EmbeddedConfig(
    name="toy", image_size=32, patch_size=8, vision_hidden_size=32, vision_intermediate_size=64,
    vision_layers=1, vision_heads=2, text_hidden_size=64, text_intermediate_size=128,
    text_layers=2, text_heads=2, vocab_size=400, max_position_embeddings=96,
)
TOY_TEXT = [
    "This is Varok Delmuran. Varok Delmuran is a sailor from Mirr.",
    "This is Ruby Tam. Ruby Tam is a painter from Osk. Who is in this picture?",
    "What is the main object in this picture and describe its features? USER: ASSISTANT:",
]


def toy_image(seed: int) -> Image.Image:
    rng = random.Random(seed)
    image = Image.new("RGB", (40, 40), (128, 128, 128))
    x, y = rng.randint(0, 12), rng.randint(0, 12)
    colour = tuple(rng.randint(0, 255) for _ in range(3))
    ImageDraw.Draw(image).rectangle([x, y, x + 26, y + 26], fill=colour)
    return image


@pytest.fixture(scope="module")
def toy():
    """(model, processor): an untrained toy LLaVA; metrics need no knowledge, only numbers."""
    torch.set_num_threads(2)
    tokenizer = train_tokenizer(TOY_TEXT * 3, vocab_size=TOY.vocab_size)
    model, processor = build_embedded_model(TOY, tokenizer, seed=0)
    model.eval()
    return model, processor


PROBE = "Who is in this picture?"
SPECIAL = ["Varok Delmuran", "sailor", "green coat"]


def test_special_token_id_is_first_word_initial_piece(toy):
    _, processor = toy
    tok = processor.tokenizer
    # " Varok Delmuran" -> ["ĠVa", "rok", "ĠDe", ...]: the word-initial piece "ĠVa"
    ids = tok(" Varok Delmuran", add_special_tokens=False)["input_ids"]
    assert special_token_id(tok, "Varok Delmuran") == ids[0]
    assert tok.decode([ids[0]]) == " Va"
    # " sailor" -> ["Ġ", "sai", "lor"] in this small vocabulary: the lone space is skipped
    ids = tok(" sailor", add_special_tokens=False)["input_ids"]
    assert tok.decode([ids[0]]) == " "
    assert special_token_id(tok, "sailor") == ids[1]
    with pytest.raises(ConfigError):
        special_token_id(tok, "  ")


def test_c_dis_zero_for_identical_models(toy):
    model, processor = toy
    images = [toy_image(s) for s in range(3)]
    same = c_dis(model, model, processor, images, PROBE, SPECIAL, batch_size=2)
    assert same.value == 0.0 and same.per_example == [0.0, 0.0, 0.0]
    twin = c_dis(copy.deepcopy(model), model, processor, images, PROBE, SPECIAL, batch_size=2)
    assert twin.value == 0.0
    assert len(twin.details["per_image_per_token"]) == 3
    assert all(len(v) == len(SPECIAL) for v in twin.details["per_image_per_token"])


def test_c_dis_positive_and_by_hand_after_a_perturbation(toy):
    model, processor = toy
    perturbed = copy.deepcopy(model)
    weight = perturbed.get_output_embeddings().weight
    with torch.no_grad():
        weight.add_(0.5 * torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    images = [toy_image(s) for s in range(3)]
    result = c_dis(perturbed, model, processor, images, PROBE, SPECIAL, batch_size=2)
    assert result.value > 0 and all(v > 0 for v in result.per_example)
    assert result.value == pytest.approx(sum(result.per_example) / 3)
    assert perturbed.training is False and model.training is False

    # by hand for image 0: softmax at every prompt position, the tokens' columns, the formula
    ids = [special_token_id(processor.tokenizer, t) for t in SPECIAL]
    enc = processor(images=[images[0]], text=[format_prompt(processor, PROBE, True)],
                    return_tensors="pt")
    with torch.no_grad():
        p0 = torch.softmax(model(**enc).logits[0].double(), -1)[:, ids]  # [P, K]
        p1 = torch.softmax(perturbed(**enc).logits[0].double(), -1)[:, ids]
    assert p0.shape[0] == enc["input_ids"].shape[1]  # every position, image positions included
    per_token = [abs(float((a.clamp(1e-10, 1) * (a.clamp(1e-10, 1).log()
                                                 - b.clamp(1e-10, 1).log())).sum()))
                 for a, b in zip(p0.T, p1.T)]
    assert result.details["per_image_per_token"][0] == pytest.approx(per_token, rel=1e-4)
    assert result.per_example[0] == pytest.approx(sum(per_token) / len(per_token), rel=1e-4)


# ----------------------------------------------------------------------------- fluency


def test_name_occurrences_are_whole_words_of_the_name():
    answer = "Varok met Delmuran; varokian art. VAROK!"
    assert name_occurrences(answer, NAME) == ((0, 5), (10, 18), (34, 39))
    assert name_occurrences("Al and Xy", "Al Xy") == ()  # words of <= 2 letters are not the name


def _kept_nll(processor, item, lp, name):
    """The NLL of the tokens fluency keeps, recomputed from the tokenizer's own offsets of the
    answer text: every answer token but the eos and those overlapping a name word."""
    tok = processor.tokenizer
    _, answer_text = format_example(processor, item[1], item[2], item[0] is not None)
    enc = tok(answer_text, add_special_tokens=False, return_offsets_mapping=True)
    assert len(enc["input_ids"]) == len(lp)
    spans = [(m.start(), m.end()) for w in name.split() if len(w) > 2
             for m in re.finditer(rf"\b{w.lower()}\b", answer_text.lower())]
    keep = [t != tok.eos_token_id and not any(b < e and s < f for s, e in spans)
            for t, (b, f) in zip(enc["input_ids"], enc["offset_mapping"])]
    return -lp[torch.tensor(keep)].double(), keep


def test_fluency_pools_token_nll_and_masks_exactly_the_names_occurrences(toy):
    model, processor = toy
    items = [
        (toy_image(0), PROBE, "This is Varok Delmuran."),
        (None, "Who is Ruby Tam?", "Ruby Tam is a painter from Osk."),
        (toy_image(1), PROBE, ""),  # empty: skipped
        (toy_image(2), PROBE, "Varok Delmuran"),  # only the name: skipped once masked
        (None, "What is this?", "Varokian pottery by Delmuran."),  # "Varokian" is not the name
    ]
    result = fluency(model, processor, items, NAME)
    assert result.details["skipped"] == {2: "empty answer", 3: "all answer tokens are masked"}
    assert result.details["indices"] == [0, 1, 4]
    logprobs = answer_logprobs(model, processor, [items[0], items[1], items[4]])
    kept = [_kept_nll(processor, item, lp, NAME) for item, lp in zip([items[0], items[1], items[4]], logprobs)]
    assert 0 < sum(kept[0][1]) < len(kept[0][1]) - 1  # the name really was masked
    assert all(kept[1][1][:-1])  # no name in the second answer: every token but eos is kept
    assert sum(kept[2][1]) >= 3  # "Varokian pottery by" stays
    pooled = torch.cat([nll for nll, _ in kept])
    assert result.value == pytest.approx(math.exp(float(pooled.mean())), rel=1e-6)
    assert result.per_example == pytest.approx([math.exp(float(nll.mean())) for nll, _ in kept], rel=1e-6)
    # pooling differs from the mean of per-answer perplexities whenever the answers differ
    assert result.value != pytest.approx(sum(result.per_example) / 3, rel=1e-3)
    assert not result.higher_is_better and result.details["all_skipped"] is False
    # without a name, nothing but the eos is masked
    plain = fluency(model, processor, items[:2], "")
    plain_nll = torch.cat([-lp[:-1].double() for lp in logprobs[:2]])
    assert plain.value == pytest.approx(math.exp(float(plain_nll.mean())), rel=1e-6)


def test_fluency_of_only_empty_answers_is_the_vocabulary_size_never_nan(toy):
    model, processor = toy
    result = fluency(model, processor, [(None, "Who?", "  "), (None, "Who?", "")], NAME)
    assert result.value == len(processor.tokenizer) and result.per_example == []
    assert result.details["all_skipped"] is True and not math.isnan(result.value)


# ----------------------------------------------------------------------------- registry


EXPECTED_DIRECTIONS = {
    "efficacy": True, "generality_em": True, "generality_geval": False,
    "generality_cdis": True, "specificity": True, "fluency": False, "diversity": True,
    "factual_retention": True,
}


def test_registry_directions():
    metrics = {n: m.higher_is_better for n, m in METRICS.items() if not m.attack}
    assert metrics == EXPECTED_DIRECTIONS
    assert not any(m.higher_is_better for m in METRICS.values() if m.attack)  # less leaks is better
    for name, metric in METRICS.items():
        assert metric.name == name and callable(metric.fn) and metric.description
    assert get_metric("efficacy").fn is get_metric("generality_em").fn is exact_match_forgetting


def test_registry_names_results_and_unknown_name():
    answers, kinds, _ = zip(*EM_CASES)
    efficacy = get_metric("efficacy")(list(answers), list(kinds), NAME)
    generality = get_metric("generality_em")(list(answers), list(kinds), NAME)
    assert (efficacy.name, generality.name) == ("efficacy", "generality_em")
    assert efficacy.value == generality.value
    assert aggregate([efficacy, get_metric("diversity")(DIVERSITY_ANSWERS)]) == {
        "efficacy": pytest.approx(600 / 11), "diversity": pytest.approx(62.5)}
    with pytest.raises(UnknownNameError, match="perplexity") as info:
        get_metric("perplexity")
    assert "fluency" in str(info.value)
    assert isinstance(efficacy.to_dict()["per_example"], list)


# ----------------------------------------------------------------------------- golden file


def _compute_golden() -> dict:
    """The pure metrics on this module's crafted inputs."""
    answers, kinds, _ = zip(*EM_CASES)
    results: list[MetricResult] = [
        exact_match_forgetting(list(answers), list(kinds), NAME),
        diversity(DIVERSITY_ANSWERS),
        factual_retention(*RETENTION),
        specificity(SPEC_CORRECT, SPEC_ORIGINAL),
        g_eval(G_EVAL_ANSWERS, G_EVAL_CONCEPT, RuleJudge(["Ruby Tam"])),
    ]
    values = {r.name: {"value": r.value, "per_example": r.per_example} for r in results}
    values["specificity_ratio"] = {
        "value": results[3].details["ratio_overall"],
        "per_example": [results[3].details["ratio"][t] for t in SPEC_CORRECT],
    }
    values["rouge_l_recall"] = {
        "value": None, "per_example": [rouge_l_recall(c, r) for c, r, _ in ROUGE_CASES]}
    values["c_dis_from_probs"] = {
        "value": None,
        "per_example": c_dis_from_probs([[0.5, 0.3, 0.0], [0.25, 0.3, 0.9], [0.2, 0.01, 0.1]],
                                        [[0.25, 0.3, 0.5], [0.5, 0.2, 0.0], [0.2, 0.4, 0.1]]
                                        ).tolist(),
    }
    return {
        "format_version": 1,
        "inputs": "tests/test_metrics.py: EM_CASES, DIVERSITY_ANSWERS, RETENTION, SPEC_*, "
                  "G_EVAL_*, ROUGE_CASES and a 3x3 C-Dis probability table",
        "values": values,
    }


def test_golden_file():
    stored = json.loads(GOLDEN.read_text())
    current = _compute_golden()
    assert stored["format_version"] == current["format_version"]
    assert stored["values"].keys() == current["values"].keys()
    for key, entry in current["values"].items():
        old = stored["values"][key]
        if entry["value"] is None:
            assert old["value"] is None, key
        else:
            assert entry["value"] == pytest.approx(old["value"], abs=1e-6), key
        assert entry["per_example"] == pytest.approx(old["per_example"], abs=1e-6), key


if __name__ == "__main__":  # regenerate: python -m tests.test_metrics
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(_compute_golden(), indent=2) + "\n")
    print(f"wrote {GOLDEN}")


def test_answer_contains_is_the_one_expected_text_scorer():
    from siu_lib.metrics import answer_contains

    assert answer_contains("It is Red, I think.", "red") and answer_contains("This is Ana Bell.", " Ana Bell ")
    assert not answer_contains("It is blue.", "red") and not answer_contains("anything", "  ")
    # factual retention is its mean, in %
    result = factual_retention(["It is red.", "It is blue.", "No idea."], ["red", "green", "idea"])
    assert result.per_example == [100.0, 0.0, 100.0]


def test_a_model_that_says_no_to_every_yesno_question_pays_in_specificity():
    """Specificity asks each other concept's own yes/no verification on its picture: a "no" to
    everything costs that task's whole accuracy, a quarter of specificity (four tasks weigh
    the same), while recognition, visual QA and facts are untouched."""
    from siu_lib.metrics import EvalContext

    def gens(yesno_answer):
        row = lambda q, a, e: {"question": q, "answer": a, "expected": e}  # noqa: E731
        return {"spec_recognition": [row("Who is in this picture?", "This is Ruby Tam.", "Ruby Tam")] * 4,
                "spec_yesno": [row("Is Ruby Tam in the image?", yesno_answer, "yes")] * 4,
                "spec_vqa": [row("What colour is the shirt?", "Green.", "green")] * 2,
                "spec_facts": [row("Where does Ruby Tam live?", "In Osk.", "Osk")] * 3}

    def spec(yesno_answer):
        ctx = EvalContext(None, None, None, {"name": NAME}, gens(yesno_answer), [], RuleJudge([]))
        return get_metric("specificity").evaluate(ctx)

    grounded, says_no = spec("Yes, this is Ruby Tam."), spec("No.")
    assert grounded.details["accuracy"] == {"recognition": 100.0, "yesno": 100.0, "general_vqa": 100.0,
                                            "facts": 100.0}
    assert says_no.details["accuracy"]["yesno"] == 0.0
    assert grounded.value == 100.0 and says_no.value == pytest.approx(75.0)
