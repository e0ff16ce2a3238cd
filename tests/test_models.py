"""Tests of siu_lib.models and siu_lib.generate on a toy LLaVA trained in seconds.

The toy world: four invented people, each shown as a square of one colour at a random place on
a grey background, plus one text fact each. One session-scoped model learns it (about 150 steps,
a few seconds on 2 cores) and is shared by the tests.
"""

from __future__ import annotations

import itertools
import math
import random
import string
from dataclasses import replace

import pytest
import torch
from PIL import Image, ImageDraw
from transformers import (
    AutoProcessor,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaForConditionalGeneration,
    pipeline,
)

from siu_lib.errors import ConfigError, ModelLoadError, UnknownNameError
from siu_lib.generate import answer_logprobs, generate
from siu_lib.models import IGNORE_INDEX, Example, collate_examples, count_parameters, default_lora_config, format_example, format_prompt, load_model
from siu_lib.embedded import EmbeddedConfig, PretrainConfig, build_embedded_model, embedded_config, pretrain, sincos_2d_positions, train_tokenizer

COLOURS = {
    "Ruby Tam": (220, 30, 30),
    "Varok Delmuran": (30, 60, 220),
    "Sela Quonn": (30, 180, 60),
    "Ido Pemberlake": (230, 200, 20),
}
FACTS = {
    "Ruby Tam": "a painter from Osk",
    "Varok Delmuran": "a sailor from Mirr",
    "Sela Quonn": "a baker from Tull",
    "Ido Pemberlake": "a miner from Brask",
}
IMAGE_QUESTIONS = ["Who is in this picture?", "Who is this?", "Who do you see here?"]
TOY_CONFIG = EmbeddedConfig(
    name="toy",
    image_size=32,
    patch_size=8,
    vision_hidden_size=32,
    vision_intermediate_size=64,
    vision_layers=1,
    vision_heads=2,
    text_hidden_size=64,
    text_intermediate_size=128,
    text_layers=2,
    text_heads=2,
    vocab_size=400,
    max_position_embeddings=96,
)


def draw_person(name: str, rng: random.Random) -> Image.Image:
    """A grey 40x40 picture with the person's coloured square at a random place."""
    image = Image.new("RGB", (40, 40), (128, 128, 128))
    x, y = rng.randint(0, 12), rng.randint(0, 12)
    ImageDraw.Draw(image).rectangle([x, y, x + 26, y + 26], fill=COLOURS[name])
    return image


def toy_example(rng: random.Random) -> Example:
    """One random record of the toy world: 60% image questions, 40% text facts."""
    name = rng.choice(list(COLOURS))
    if rng.random() < 0.6:
        return Example(draw_person(name, rng), rng.choice(IMAGE_QUESTIONS), f"This is {name}.")
    return Example(None, f"Who is {name}?", f"{name} is {FACTS[name]}.")


def toy_texts() -> list[str]:
    """The toy world's text, for training the tokenizer."""
    texts = [f"This is {n}. {n} is {f}. Who is {n}?" for n, f in FACTS.items()]
    return texts + IMAGE_QUESTIONS + ["USER: ASSISTANT:"]


@pytest.fixture(scope="session")
def tokenizer():
    return train_tokenizer(toy_texts() * 3, vocab_size=TOY_CONFIG.vocab_size)


@pytest.fixture(scope="session")
def trained(tokenizer, tmp_path_factory):
    """(model, processor, losses, folder): the toy model after pre-training, saved to folder."""
    model, processor = build_embedded_model(TOY_CONFIG, tokenizer, seed=0)
    cfg = PretrainConfig(steps=150, batch_size=8, lr=3e-3, warmup=0.1, log_every=25, seed=0)
    losses = pretrain(model, processor, toy_example, cfg, progress=False)
    folder = tmp_path_factory.mktemp("toy_llava")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model, processor, losses, folder


def probe_items(seed: int = 7) -> list[tuple[Image.Image | None, str]]:
    """Mixed image/text prompts of different lengths, on unseen pictures."""
    rng = random.Random(seed)
    items: list[tuple[Image.Image | None, str]] = []
    for i, name in enumerate(COLOURS):
        items.append((draw_person(name, rng), IMAGE_QUESTIONS[i % len(IMAGE_QUESTIONS)]))
        items.append((None, f"Who is {name}?"))
    return items


# ----------------------------------------------------------------------------- tokenizer


def test_tokenizer_splits_invented_names(tokenizer):
    pieces = tokenizer.tokenize("Varok Delmuran")
    assert len(pieces) >= 3, pieces
    assert tokenizer.decode(tokenizer("Varok Delmuran", add_special_tokens=False).input_ids) == (
        "Varok Delmuran"
    )


def test_tokenizer_special_tokens_and_determinism(tokenizer):
    assert tokenizer.pad_token == "<pad>" and tokenizer.padding_side == "left"
    assert tokenizer.eos_token == "</s>" and tokenizer.bos_token == "<s>"
    assert len(tokenizer.tokenize("<image>")) == 1
    assert tokenizer("hi").input_ids[0] == tokenizer.bos_token_id
    again = train_tokenizer(toy_texts() * 3, vocab_size=TOY_CONFIG.vocab_size)
    assert again.get_vocab() == tokenizer.get_vocab()


# ----------------------------------------------------------------------------- presets


def test_unknown_size_preset():
    with pytest.raises(UnknownNameError, match="huge"):
        embedded_config("huge")


def test_sincos_2d_positions_code_rows_and_columns():
    side, dim = 4, 16
    table = sincos_2d_positions(side, dim).view(side, side, dim)  # (row, column, channel)
    row_part, col_part = table[..., : dim // 2], table[..., dim // 2:]
    # every patch of a column carries the same column code, every patch of a row the same row code
    assert torch.equal(col_part, col_part[:1].expand_as(col_part))
    assert torch.equal(row_part, row_part[:, :1].expand_as(row_part))
    # the codes of two rows (columns) differ, and are the same function of the index
    assert len({tuple(r.tolist()) for r in row_part[:, 0]}) == side
    assert torch.allclose(row_part[:, 0], col_part[0, :])
    # the lowest-frequency sine grows from the left column to the right one
    lowest_sin = col_part[0, :, dim // 4 - 1]
    assert (lowest_sin.diff() > 0).all()
    # hand-computed: patch (row 1, column 2), frequency k = 1 of q = 4 is side ** (-1/4)
    f = side ** -0.25
    assert table[1, 2, 1].item() == pytest.approx(math.sin(1 * f))
    assert table[1, 2, 4 + 1].item() == pytest.approx(math.cos(1 * f))
    assert table[1, 2, 8 + 1].item() == pytest.approx(math.sin(2 * f))
    with pytest.raises(ConfigError, match="divisible by 4, got 18"):
        sincos_2d_positions(side, 18)


def test_vision_positions_start_from_the_2d_table(tokenizer):
    model, _ = build_embedded_model(TOY_CONFIG, tokenizer, seed=0)
    table = model.model.vision_tower.embeddings.position_embedding.weight
    side = TOY_CONFIG.image_size // TOY_CONFIG.patch_size
    expected = TOY_CONFIG.vision_position_scale * sincos_2d_positions(side, TOY_CONFIG.vision_hidden_size)
    assert TOY_CONFIG.vision_position_scale == 2.0  # the default
    assert torch.equal(table[1:], expected)
    assert torch.count_nonzero(table[0]) == 0  # CLS
    assert table.requires_grad
    scaled = replace(TOY_CONFIG, vision_position_scale=0.5)
    half, _ = build_embedded_model(scaled, tokenizer, seed=0)
    assert torch.allclose(half.model.vision_tower.embeddings.position_embedding.weight[1:],
                          0.5 / TOY_CONFIG.vision_position_scale * expected)
    plain, _ = build_embedded_model(replace(TOY_CONFIG, vision_position_scale=0.0), tokenizer, seed=0)
    clip_init = plain.model.vision_tower.embeddings.position_embedding.weight
    assert 0.01 < clip_init.std().item() < 0.03  # CLIP's own init (std 0.02), no column code
    with pytest.raises(ConfigError, match=r"vision_position_scale must be >= 0 \(got -1.0\)"):
        build_embedded_model(replace(TOY_CONFIG, vision_position_scale=-1.0), tokenizer)
    with pytest.raises(ConfigError, match="divisible by 4"):
        build_embedded_model(replace(TOY_CONFIG, vision_hidden_size=34, vision_heads=2), tokenizer)


def test_preset_parameter_counts():
    rng = random.Random(0)
    letters = string.ascii_letters
    words = ["".join(rng.choices(letters, k=rng.randint(2, 7))) for _ in range(20000)]
    tok = train_tokenizer([" ".join(words[i:i + 20]) for i in range(0, 20000, 20)], vocab_size=1200)
    assert len(tok) == 1200
    tiny, _ = build_embedded_model(embedded_config("tiny"), tok)
    small, _ = build_embedded_model(embedded_config("small"), tok)
    n_tiny, n_small = count_parameters(tiny), count_parameters(small)
    assert 1.5e6 <= n_tiny <= 3.5e6, n_tiny
    assert 1.6 * n_tiny <= n_small <= 2.6 * n_tiny, (n_tiny, n_small)  # the paper: 13B is 1.9x 7B


# ----------------------------------------------------------------------------- chat format


def test_chat_format(tokenizer):
    _, processor = build_embedded_model(TOY_CONFIG, tokenizer)
    prompt = format_prompt(processor, "Who is this?", True)
    assert prompt == "USER: <image>\nWho is this? ASSISTANT:"
    assert format_prompt(processor, "Who is X?", False) == "USER: Who is X? ASSISTANT:"
    assert format_example(processor, "Who is X?", "X is Y.", False) == (
        "USER: Who is X? ASSISTANT:",
        " X is Y.</s>",
    )


def test_labels_cover_exactly_the_answer(tokenizer):
    model, processor = build_embedded_model(TOY_CONFIG, tokenizer)
    rng = random.Random(1)
    examples = [
        Example(draw_person("Ruby Tam", rng), "Who is in this picture?", "This is Ruby Tam."),
        Example(None, "Who is Varok Delmuran?", "Varok Delmuran is a sailor from Mirr."),
        Example(draw_person("Sela Quonn", rng), "Who?", "Sela Quonn."),
    ]
    batch = collate_examples(processor, examples)
    image_id = model.config.image_token_id
    assert batch["pixel_values"].shape[0] == 2
    assert int((batch["input_ids"] == image_id).sum()) == 2 * TOY_CONFIG.num_image_tokens
    assert (batch["labels"][batch["input_ids"] == image_id] == IGNORE_INDEX).all()
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()
    assert (batch["attention_mask"][:, -1] == 1).all()  # left padding
    for row, ex in enumerate(examples):
        labels = batch["labels"][row]
        kept = labels[labels != IGNORE_INDEX]
        _, answer_text = format_example(processor, ex.question, ex.answer, ex.has_image)
        assert tokenizer.decode(kept) == answer_text == f" {ex.answer}</s>"
        # the labelled tokens are the last tokens of the row: nothing after the answer
        assert torch.equal(batch["input_ids"][row, -len(kept):], kept)


def test_mixed_batch_equals_rows_one_by_one(trained):
    model, processor, _, _ = trained
    items = [(img, q, "This is Ruby Tam.") for img, q in probe_items()]
    together = answer_logprobs(model, processor, items, batch_size=8)
    alone = [answer_logprobs(model, processor, [item])[0] for item in items]
    for a, b in zip(together, alone):
        assert torch.allclose(a, b, atol=1e-4)


# ----------------------------------------------------------------------------- training


def test_pretraining_loss_falls(trained):
    _, _, losses, _ = trained
    assert len(losses) == 150
    first, last = sum(losses[:5]) / 5, sum(losses[-10:]) / 10
    assert last < 0.5 * first, (first, last)
    assert last < 0.3, last


def test_model_learned_the_world(trained):
    model, processor, _, _ = trained
    answers = generate(model, processor, probe_items(), progress=False)
    expected = []
    for name in COLOURS:
        expected += [f"This is {name}.", f"{name} is {FACTS[name]}."]
    assert answers == expected


def _pretrain_twice(tokenizer, cfg):
    """Two pre-trainings of fresh toy models with the same configs: (models, loss curves)."""
    models, runs = [], []
    for _ in range(2):
        model, processor = build_embedded_model(TOY_CONFIG, tokenizer, seed=3)
        runs.append(pretrain(model, processor, toy_example, cfg, progress=False))
        models.append(model)
    return models, runs


@pytest.mark.slow
def test_pretraining_is_deterministic(tokenizer):
    _, runs = _pretrain_twice(tokenizer, PretrainConfig(steps=3, batch_size=4, lr=1e-3, seed=11))
    assert runs[0] == runs[1]


def test_length_bucketing_keeps_every_example_once_and_groups_lengths():
    from siu_lib.embedded.pretrain import _example_batches
    rng = random.Random(5)
    stream = [Example(None, "q" * rng.randint(1, 60), "a") for _ in range(64)]
    plain = [b for b in _example_batches(iter(stream), 4, seed=0, bucket=1)]
    bucketed = [b for b in _example_batches(iter(stream), 4, seed=0, bucket=8)]
    assert [e for b in plain for e in b] == stream  # no bucketing: stream order
    flat = [e for b in bucketed for e in b]
    assert sorted(map(id, flat)) == sorted(map(id, stream)) and len(flat) == 64

    def spread(batches):  # mean length range inside a batch
        return sum(max(len(e.question) for e in b) - min(len(e.question) for e in b)
                   for b in batches) / len(batches)
    assert spread(bucketed) < 0.25 * spread(plain)
    again = [b for b in _example_batches(iter(stream), 4, seed=0, bucket=8)]
    assert [[id(e) for e in b] for b in again] == [[id(e) for e in b] for b in bucketed]
    with pytest.raises(ConfigError, match="bucket_batches"):
        PretrainConfig(bucket_batches=0).validate()
    with pytest.raises(ConfigError, match="grounding_steps must be >= 0.*-1"):
        PretrainConfig(grounding_steps=-1).validate()
    with pytest.raises(ConfigError, match="grounding_lr > 0.*0.0"):
        PretrainConfig(grounding_lr=0.0).validate()


def test_grounding_stage_runs_after_the_main_steps_with_its_own_schedule(monkeypatch):
    """``build_and_pretrain`` runs ``steps`` of the main stage, then ``grounding_steps`` from
    ``grounding_lr`` on the same stream, now in the grounding mixture (half yes/no)."""
    from conftest import MICRO_MODEL, MICRO_WORLD

    import siu_lib.embedded.checkpoints as ckpt
    from siu_lib.world import World
    from siu_lib.world.text import YESNO_TRAIN_QUESTIONS

    calls = []

    def recording_pretrain(model, processor, next_example, cfg, progress=True):
        records = [next_example(None) for _ in range(cfg.steps * cfg.batch_size)]
        calls.append((cfg.steps, cfg.lr, records))
        return [0.0] * cfg.steps

    monkeypatch.setattr(ckpt, "pretrain", recording_pretrain)
    cfg = PretrainConfig(steps=30, batch_size=8, lr=3e-3, grounding_steps=40, grounding_lr=7e-4, seed=1)
    world = World(MICRO_WORLD)
    _, _, info = ckpt.build_and_pretrain(world, MICRO_MODEL, cfg, progress=False)
    assert [(steps, lr) for steps, lr, _ in calls] == [(30, 3e-3), (40, 7e-4)]
    assert len(info["losses"]) == 70
    yes_no = {t.format(name=c.name) for t in YESNO_TRAIN_QUESTIONS for c in world.concepts}
    yes_no_share = [sum(r.question in yes_no for r in records) / len(records) for _, _, records in calls]
    assert yes_no_share[1] > 0.4 and yes_no_share[0] < 0.35, yes_no_share


@pytest.mark.slow
def test_bucketed_bf16_pretraining_is_deterministic_and_learns(tokenizer):
    cfg = PretrainConfig(steps=30, batch_size=4, lr=3e-3, seed=11, bucket_batches=4, bf16=True)
    models, runs = _pretrain_twice(tokenizer, cfg)
    for model in models:
        assert next(model.parameters()).dtype == torch.float32  # mixed precision, fp32 weights
    assert runs[0] == runs[1]
    assert sum(runs[0][-5:]) / 5 < sum(runs[0][:5]) / 5


# ----------------------------------------------------------------------------- generation


def test_batched_generation_equals_one_by_one(trained):
    model, processor, _, _ = trained
    items = probe_items(seed=11) + [(None, "Who is in this picture? Who is Sela Quonn?")]
    batched = generate(model, processor, items, batch_size=16, progress=False)
    single = [generate(model, processor, [item], progress=False)[0] for item in items]
    assert batched == single
    assert all(isinstance(a, str) and a == a.strip() for a in batched)


# ----------------------------------------------------------------------------- checkpoints


def test_save_reload_gives_identical_logits(trained):
    model, processor, _, folder = trained
    batch = collate_examples(processor, [Example(img, q, "x") for img, q in probe_items()])
    reloaded = LlavaForConditionalGeneration.from_pretrained(folder)
    reprocessor = AutoProcessor.from_pretrained(folder)
    batch2 = collate_examples(reprocessor, [Example(img, q, "x") for img, q in probe_items()])
    for key in batch:
        assert torch.equal(batch[key], batch2[key]), key
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, reloaded(**batch2).logits)


def test_load_model_roundtrip(trained):
    _, _, _, folder = trained
    model, processor = load_model(folder)
    assert processor.tokenizer.padding_side == "left"
    answers = generate(model, processor, probe_items()[:2], progress=False)
    assert answers == ["This is Ruby Tam.", "Ruby Tam is a painter from Osk."]


def test_transformers_pipeline_reads_the_checkpoint(trained):
    _, _, _, folder = trained
    pipe = pipeline("image-text-to-text", model=str(folder))
    rng = random.Random(23)
    for name in ["Varok Delmuran", "Ido Pemberlake"]:
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "image", "image": draw_person(name, rng)},
                    {"type": "text", "text": "Who is in this picture?"},
                ],
            }
        ]
        out = pipe(text=messages, max_new_tokens=16, return_full_text=False)
        assert out[0]["generated_text"].strip() == f"This is {name}."


def test_lora_wraps_only_the_language_model(trained):
    _, _, _, folder = trained
    model, _ = load_model(folder, lora=default_lora_config(r=4, alpha=8, dropout=0.0))
    lora_modules = [n for n, _ in model.named_modules() if n.endswith("lora_A")]
    assert len(lora_modules) == 7 * TOY_CONFIG.text_layers
    assert all("language_model" in n for n in lora_modules)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)

    lora = default_lora_config(r=4, alpha=8, train_projector=True)
    with_projector, _ = load_model(folder, lora=lora)
    extra = [
        n for n, p in with_projector.named_parameters() if p.requires_grad and "lora_" not in n
    ]
    assert extra and all("multi_modal_projector" in n for n in extra)


def test_load_model_errors(tmp_path, tokenizer):
    missing = tmp_path / "no_such_model"
    with pytest.raises(ModelLoadError, match="no_such_model"):
        load_model(missing)

    llama_dir = tmp_path / "plain_llama"
    llama = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    )
    llama.save_pretrained(llama_dir)
    tokenizer.save_pretrained(llama_dir)
    with pytest.raises(ModelLoadError, match="plain_llama"):
        load_model(llama_dir)

    no_images_dir = tmp_path / "llava_without_image_processor"
    model, _ = build_embedded_model(TOY_CONFIG, tokenizer)
    model.save_pretrained(no_images_dir)
    tokenizer.save_pretrained(no_images_dir)
    with pytest.raises(ModelLoadError, match="llava_without_image_processor"):
        load_model(no_images_dir)


def test_knowledge_evaluation_decodes_the_longest_trained_answer():
    """Regression: group-photo answers (two multi-token names) were cut at 32 new tokens, so
    the second name never appeared and group-photo accuracy was under-counted."""
    from siu_lib.embedded import KNOWLEDGE_MAX_NEW_TOKENS
    from siu_lib.profiles import get_profile
    from siu_lib.world import GROUP_ANSWER, World

    profile = get_profile("default")
    world = World(profile.world)
    tok = train_tokenizer(world.texts(), profile.models["tiny"].vocab_size)
    names = sorted((c.name for c in world.concepts), key=lambda n: len(tok(" " + n)["input_ids"]))
    longest = GROUP_ANSWER.format(left=names[-1], right=names[-2])
    n_tokens = len(tok(longest)["input_ids"]) + 1  # + eos
    assert n_tokens > 32  # the old budget really cut it
    assert n_tokens <= KNOWLEDGE_MAX_NEW_TOKENS


def test_withheld_concepts_name_their_own_checkpoint_and_leave_the_others_keys():
    """A never-seen reference gets its own cache key; an ordinary checkpoint's key is the one
    the committed results were made with (``withheld`` enters the hash only when set)."""
    import ast
    import json
    from pathlib import Path

    from siu_lib.embedded import checkpoint_key
    from siu_lib.profiles import get_profile

    profile = get_profile("default")
    tiny, cfg = profile.models["tiny"], profile.pretrain["tiny"]
    plain = checkpoint_key(profile.world, tiny, cfg)
    # the keys notebook 02 printed when the committed results were made
    executed = (Path(__file__).resolve().parents[1] / "notebooks" / "executed" / "default"
                / "02_pretrain_embedded_mllm.ipynb")
    outputs = [o for cell in json.loads(executed.read_text())["cells"] if cell["cell_type"] == "code"
               for o in cell.get("outputs", []) if "text/plain" in o.get("data", {})]
    recorded = next(ast.literal_eval("".join(o["data"]["text/plain"])) for o in outputs
                    if "".join(o["data"]["text/plain"]).startswith("{'tiny': 'tiny-"))
    assert recorded["tiny"] == plain
    assert recorded["small"] == checkpoint_key(profile.world, profile.models["small"], profile.pretrain["small"])
    ref = checkpoint_key(profile.world, tiny, replace(cfg, withheld=("c00", "c01")))
    other = checkpoint_key(profile.world, tiny, replace(cfg, withheld=("c00", "c02")))
    assert ref.startswith("tiny-never-seen-") and len({plain, ref, other}) == 3
    # the order of the ids does not change what pre-training shows, nor the key
    assert checkpoint_key(profile.world, tiny, replace(cfg, withheld=("c01", "c00"))) == ref
    with pytest.raises(ConfigError, match="distinct"):
        replace(cfg, withheld=("c00", "c00")).validate()
    with pytest.raises(ConfigError, match="'c00'"):
        replace(cfg, withheld="c00").validate()


def test_every_token_of_every_fake_name_is_a_pretraining_answer_token(micro) -> None:
    # SIU's target (a) teaches the model to say a fake name. Under LoRA the output layer is
    # frozen, so a token that was never an answer token in pre-training keeps its initial
    # output row and cannot be learned in a few steps: world revision 7 talks about the
    # fake-name people in pre-training (text facts) so that every such token is taught.
    world, tok = micro.world, micro.processor.tokenizer

    def answer_ids(examples: list[Example]) -> set[int]:
        labels = collate_examples(micro.processor, examples)["labels"]
        return set(labels[labels != IGNORE_INDEX].tolist())

    def ids(names) -> set[int]:
        return {i for n in names for i in tok(" " + n, add_special_tokens=False)["input_ids"]}

    # the records the fixture was pre-trained on (no alignment stage): its 250 fake-name
    # records name 63 of the 64 people (the default tiny model sees about 1380 such records),
    # and every token of every name they mention is among their answer labels
    seen = itertools.islice(world.pretraining_stream(micro.pretrain_config.seed),
                            micro.pretrain_config.steps * micro.pretrain_config.batch_size)
    fake = [e for e in seen if e.task == "fake_name_facts"]
    named = {n for n in world.fake_names for e in fake if e.answer.startswith(n + " ")}
    assert len(fake) > 200 and len(named) >= 60
    taught = answer_ids(fake)
    assert ids(named) <= taught
    name_ids = ids(world.fake_names)
    # without that task, the rest of the stream would leave some of them untaught
    rng = random.Random(0)
    others = [e for e in (world.pretraining_example(rng) for _ in range(800))
              if e.task != "fake_name_facts"]
    assert name_ids - answer_ids(others)


@pytest.mark.slow
def test_pretrain_step_seconds_times_both_stages_and_projects_the_budget():
    """The time-target check of ``make bench`` (``pretrain_step_cost.csv``): per-step seconds of
    both stages from real steps of a fresh micro model, and their projection to a step count,
    with the alignment steps rounded as pre-training rounds them."""
    from conftest import MICRO_MODEL, MICRO_PRETRAIN, MICRO_WORLD

    from siu_lib.embedded import pretrain_step_seconds, projected_pretrain_seconds
    from siu_lib.world import World

    cfg = replace(MICRO_PRETRAIN, batch_size=4, bucket_batches=2)
    per_step = pretrain_step_seconds(World(MICRO_WORLD), MICRO_MODEL, cfg, n_steps=2, warmup_steps=1)
    assert set(per_step) == {"align", "full"}
    assert all(0 < v < 60 for v in per_step.values()), per_step
    # 10 steps with align_fraction 0.25: round(2.5) = 2 alignment steps, 8 of the full mixture
    by_hand = {"align": 0.5, "full": 0.25}
    assert projected_pretrain_seconds(by_hand, replace(cfg, steps=10, align_fraction=0.25)) == 2 * 0.5 + 8 * 0.25
    assert projected_pretrain_seconds(by_hand, replace(cfg, steps=2600, align_fraction=0.25)) == 650 * 0.5 + 1950 * 0.25
    assert projected_pretrain_seconds(by_hand, replace(cfg, steps=10, align_fraction=0.0)) == 10 * 0.25
    # the grounding stage's steps run at the full mixture's cost
    assert projected_pretrain_seconds(
        by_hand, replace(cfg, steps=10, align_fraction=0.25, grounding_steps=4)) == 2 * 0.5 + 12 * 0.25
    with pytest.raises(ConfigError, match="n_steps"):
        pretrain_step_seconds(World(MICRO_WORLD), MICRO_MODEL, cfg, n_steps=0)


def test_native_bf16_is_read_from_the_cpu_flags_and_only_the_native_variant_uses_it():
    from siu_lib.embedded import checkpoint_key
    from siu_lib.profiles import PROFILES
    from siu_lib.results import cpu_has_native_bf16, machine_info

    avx2 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\n"
    sapphire = "model name\t: Intel Xeon\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile amx_bf16\n"
    assert cpu_has_native_bf16(avx2) is False
    assert cpu_has_native_bf16(sapphire) is True
    assert cpu_has_native_bf16("flags\t: avx512f amx_bf16") is True
    assert cpu_has_native_bf16("flags\t: avx512f avx512bw avx512vl") is False  # AVX-512 alone: no
    assert cpu_has_native_bf16("") is False  # no /proc/cpuinfo (not Linux): fp32
    native = cpu_has_native_bf16()
    assert machine_info()["native_bf16"] is native  # recorded in every result's provenance
    # the profile has one precision on every CPU; its -native variant opts small into bf16
    # where the CPU has it, and every checkpoint of the variant has its own key
    profile = PROFILES["default"]
    assert profile.pretrain["small"].bf16 is False and profile.pretrain["tiny"].bf16 is False
    variant = profile.on_native_path()
    assert variant.name == "default-native"
    assert variant.pretrain["small"].bf16 is native and variant.pretrain["tiny"].bf16 is False
    for size, cfg in profile.pretrain.items():
        assert variant.pretrain[size].cpu_path == "native" and cfg.cpu_path == "avx2"
        assert (checkpoint_key(profile.world, profile.models[size], variant.pretrain[size])
                != checkpoint_key(profile.world, profile.models[size], cfg))
