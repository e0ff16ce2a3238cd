"""SIU's masks, the unlearning trainer and the methods, on a model really pre-trained on a
micro world (tests/conftest.py)."""

from __future__ import annotations


import json
from dataclasses import replace

import pytest
import torch
from conftest import mask_records
from peft import PeftModel

from siu_lib import losses
from siu_lib.errors import ConfigError, UnknownNameError
from siu_lib.diagnostics import training_fit
from siu_lib.finetune_data import FTRecord, SIUDataConfig
from siu_lib.generate import answer_logprobs
from siu_lib.methods import METHODS, UnlearnTarget, get_method, reveals
from siu_lib.models import batch_to_model
from siu_lib.train import (TrainConfig, collate_records, name_token_ids, unlearn, vocab_mask_for)

#: 6 steps at batch 4 as in the paper; lr/rank for the 0.3 M-parameter micro model
FAST = TrainConfig(steps=6, batch_size=4, lr=1e-2, projector_lr=1e-3, lora_r=8, lora_alpha=16,
                   lora_dropout=0.0, seed=0)


def target_of(micro, idx: int = 0) -> UnlearnTarget:
    from siu_lib.generate import generate

    w = micro.world
    return UnlearnTarget(
        w.concepts[idx], w.forget_image(idx), w.concepts, w.fake_names,
        original_generate=lambda items: generate(micro.model, micro.processor, items,
                                                 max_new_tokens=16, progress=False))


def recognition_logprob(model, micro, idx: int, n_images: int = 4) -> float:
    """Mean log-probability of "This is <name>." on generality images of concept ``idx``."""
    c = micro.world.concepts[idx]
    items = [(micro.world.render(c, i), "Who is in this picture?", f"This is {c.name}.")
             for i in range(1, 1 + n_images)]
    lps = answer_logprobs(model, micro.processor, items)
    return float(sum(lp.sum() for lp in lps) / len(lps))


# ------------------------------------------------------------------------------ masks

def test_token_mask_lands_on_the_fake_name_after_image_expansion(micro):
    proc = micro.processor
    img = micro.world.forget_image(0)
    recs = mask_records(img)
    batch = collate_records(proc, recs)
    ids, labels, tmask = batch["input_ids"], batch["labels"], batch["token_mask"]
    image_id = proc.tokenizer.convert_tokens_to_ids("<image>")
    n_image = micro.model.config.vision_config.image_size // micro.model.config.vision_config.patch_size
    # the processor expanded <image> into the image-feature positions
    assert int((ids[0] == image_id).sum()) == n_image ** 2
    masked = (tmask[0] == 0).nonzero().flatten()
    # (a) exactly the fake name's tokens, token by token, and only answer positions
    assert proc.tokenizer.decode(ids[0, masked]).strip() == "Jacob Campbell"
    # the tokens right before and after the span stay in the KL
    assert tmask[0, masked.min() - 1] == 1 and tmask[0, masked.max() + 1] == 1
    assert proc.tokenizer.decode(ids[0, masked.max() + 1]).strip() == "."
    assert torch.equal(labels[0, masked], ids[0, masked])
    assert int(masked.min()) > int((ids[0] == image_id).nonzero().max())
    answer_pos = (labels[0] != losses.IGNORE_INDEX).nonzero().flatten()
    assert proc.tokenizer.decode(ids[0, answer_pos]).startswith(" The main character")
    assert set(masked.tolist()) < set(answer_pos.tolist())
    # (b) the whole answer is masked; only the closing eos stays in the KL
    ans_b = (labels[1] != losses.IGNORE_INDEX).nonzero().flatten()
    kept_b = [p for p in ans_b.tolist() if tmask[1, p] == 1]
    assert [proc.tokenizer.convert_ids_to_tokens(int(ids[1, p])) for p in kept_b] == ["</s>"]
    assert proc.tokenizer.decode(ids[1, ans_b[:-1]]).strip() == "No. Ana Bell has red hair."
    # (c) no span: nothing masked
    assert bool((tmask[2] == 1).all())
    assert batch["is_forget"].tolist() == [True, True, False]


def test_dmk_reads_the_distribution_that_predicts_each_answer_token(micro):
    """With real model logits: changing the reference at the positions that predict the
    fake-name tokens (t-1) leaves DMK unchanged; at a position predicting a kept token it moves."""
    proc = micro.processor
    rec = FTRecord(micro.world.forget_image(0), "Who is in this picture?",
                   "This is Jacob Campbell.", "a", "Jacob Campbell")
    batch = collate_records(proc, [rec])
    inputs = batch_to_model({k: v for k, v in batch.items()
                             if k not in ("labels", "token_mask", "is_forget")}, micro.model)
    with torch.no_grad():
        logits = micro.model(**inputs).logits
    labels, tmask = batch["labels"], batch["token_mask"]
    vmask = torch.ones(logits.shape[-1], dtype=torch.bool)
    base = losses.dmk_loss(logits, logits + 0.1 * torch.randn_like(logits), labels, tmask, vmask)
    ref = logits.clone()
    ref_noise = torch.randn_like(logits)
    masked = (tmask[0] == 0).nonzero().flatten()
    ref_a = ref.clone()
    ref_a[0, masked - 1] += 5 * ref_noise[0, masked - 1]
    d0 = losses.dmk_loss(logits, ref, labels, tmask, vmask)
    d_masked = losses.dmk_loss(logits, ref_a, labels, tmask, vmask)
    assert torch.allclose(d0, d_masked, atol=1e-6)
    kept = [p for p in (labels[0] != -100).nonzero().flatten().tolist() if tmask[0, p] == 1]
    ref_b = ref.clone()
    ref_b[0, kept[0] - 1] += 5 * ref_noise[0, kept[0] - 1]
    assert losses.dmk_loss(logits, ref_b, labels, tmask, vmask) > d0 + 1e-4
    assert base > 0


def test_vocab_mask_covers_every_id_of_the_name(micro):
    tok = micro.processor.tokenizer
    name = micro.world.concepts[0].name
    ids = name_token_ids(tok, name)
    space = tok.convert_tokens_to_ids("\u0120")  # byte-level BPE's lone space: in every sentence
    for variant in (name, " " + name, name.lower(), " " + name.split()[1].upper()):
        assert set(tok(variant, add_special_tokens=False)["input_ids"]) - {space} <= set(ids)
    assert space not in ids and all(tok.decode([i]).strip() for i in ids)
    # a name whose initial has no space-joined piece tokenises with the lone space, which stays out
    assert space in tok(" Qzx", add_special_tokens=False)["input_ids"]
    assert space not in name_token_ids(tok, "Qzx Vuq")
    mask = vocab_mask_for(tok, name, len(tok))
    assert not mask[ids].any() and int(mask.sum()) == len(tok) - len(ids)
    assert tok.convert_tokens_to_ids("<image>") not in ids


# ------------------------------------------------------------------------------ trainer

def test_lora_reference_equals_the_untouched_model_and_parameters_change(micro):
    target = target_of(micro)
    result = unlearn(micro.fresh(), micro.processor, target, "siu", train_config=FAST)
    assert len(result.history) == FAST.steps
    assert all({"ce", "dmk", "loss"} <= set(h) for h in result.history)
    rec = result.records[0]
    batch = collate_records(micro.processor, [rec])
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "token_mask", "is_forget")}
    with torch.no_grad():
        original = micro.model(**inputs).logits
        unlearned = result.model(**inputs).logits
        with result.model.disable_adapter():
            reference = result.model(**inputs).logits
    assert torch.allclose(reference, original, atol=1e-5)
    assert (unlearned - original).abs().max() > 1e-3
    lora_b = [p for n, p in result.model.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)


def test_projector_learning_rate_zero_keeps_the_projector(micro):
    def projector(model):
        return {n.split("multi_modal_projector.")[-1].replace("modules_to_save.default.", ""): p.detach().clone()
                for n, p in model.named_parameters() if "multi_modal_projector" in n and "original_module" not in n}
    before = projector(micro.model)
    for lr, moved in ((0.0, False), (1e-3, True)):
        cfg = replace(FAST, projector_lr=lr)
        result = unlearn(micro.fresh(), micro.processor, target_of(micro), "siu", train_config=cfg)
        after = projector(result.model)
        assert set(after) == set(before)
        changed = any(not torch.equal(before[k], after[k]) for k in before)
        assert changed is moved, (lr, sorted(after))


def test_full_finetuning_uses_a_frozen_copy(micro):
    m0 = micro.fresh()
    before = [p.detach().clone() for p in m0.parameters()]
    cfg = TrainConfig(steps=2, batch_size=4, lr=1e-3, use_lora=False, seed=0)
    result = unlearn(m0, micro.processor, target_of(micro), "siu", train_config=cfg)
    assert all(torch.equal(a, b) for a, b in zip(before, m0.parameters()))  # M0 untouched
    changed = [n for (n, p), q in zip(result.model.named_parameters(), before) if not torch.equal(p, q)]
    assert changed and not any("vision_tower" in n for n in changed)


def recognised(model, micro, idx: int, images=range(1, 5)) -> list[bool]:
    """Greedy answers on generality images of concept ``idx``: does each name it?"""
    from siu_lib.generate import generate

    c = micro.world.concepts[idx]
    answers = generate(model, micro.processor, [(micro.world.render(c, i), "Who is in this picture?")
                                                for i in images], max_new_tokens=24, progress=False)
    return [c.name in a for a in answers]


#: SIU's step for the forgetting test: the micro model's rank and lr (MICRO_TRAIN) with the
#: embedded default's projector lr 1e-4 (why and what it measured: docs/decisions.md)
GENTLE = replace(FAST, projector_lr=1e-4)
#: the micro world's generality images per concept (images_per_concept 6, less the forget image)
GENERALITY_IMAGES = 5
#: SIU's default record counts (spec: 9 / 2 / 7 / 7), which the micro run's data follows
SIU_COUNTS = SIUDataConfig()


def test_siu_forgets_the_target_and_keeps_the_others(micro):
    # every generality image of the micro world (1..5; image 0 is the forget image)
    images = range(1, 1 + GENERALITY_IMAGES)
    before = [recognised(micro.model, micro, i, images) for i in range(4)]
    lp_before = [recognition_logprob(micro.model, micro, i, GENERALITY_IMAGES) for i in range(4)]
    target = target_of(micro, 0)
    result = unlearn(micro.fresh(), micro.processor, target, "siu", train_config=GENTLE)
    after = [recognised(result.model, micro, i, images) for i in range(4)]
    lp_after = [recognition_logprob(result.model, micro, i, GENERALITY_IMAGES) for i in range(4)]
    drop = [b - a for b, a in zip(lp_before, lp_after)]
    # On the pinned CPU path this run is the same on every machine (the canary in test_cpu.py
    # checks the path); the margins below leave room for a borderline image either way. The
    # original names the target on every unseen image and every identity on most of them ...
    assert all(before[0]) and all(sum(r) >= 3 for r in before), before
    # ... after 6 SIU steps on one image, the target's recognising answer lost > 2 nats on
    # unseen images and it is named on at most one of them, while the others' answers moved
    # less than 1 nat and a third of the target's, and they are still named: each on at least
    # 2 of its 5 images, together on at least 80% of the images named before (under world
    # revision 11 one of them lost 0.6 nat and is named on 2 of its 5: its answers were
    # borderline, the greedy name flips with a small shift).
    assert drop[0] > 2.0, (lp_before, lp_after)
    assert sum(after[0]) <= 1, after
    for i in (1, 2, 3):
        assert abs(drop[i]) < 1.0 and abs(drop[i]) < drop[0] / 3, (i, lp_before, lp_after)
        assert sum(after[i]) >= 2, (i, before[i], after[i])
    named_before = sum(sum(before[i]) for i in (1, 2, 3))
    named_after = sum(sum(after[i]) for i in (1, 2, 3))
    assert named_after >= 0.8 * named_before, (before, after)
    # on its own records: the original names the target in every (a) record's answer and says
    # yes to both (b) questions; after SIU fewer (a) answers name it (6 of 9 measured under world
    # revision 10, 2 of 9 under revision 7: the six steps do not fit every paraphrase even on
    # the image they train on, while the unseen images above are no longer named). The micro
    # model cannot say its fake name (no (a) record is learned), which is what training_fit
    # tells apart.
    fit0 = training_fit(micro.model, micro.processor, result.records, target.name)
    fit1 = training_fit(result.model, micro.processor, result.records, target.name)
    a0, a1 = fit0[fit0.target == "a"], fit1[fit1.target == "a"]
    assert len(a0) == SIU_COUNTS.n_fake_name and a0.reveals.all() and not a0.learned.any(), fit0
    assert fit0[fit0.target == "b"].reveals.all() and len(fit0) == len(a0) + SIU_COUNTS.n_false_description, fit0
    assert a1.reveals.sum() < a0.reveals.sum(), fit1
    assert not (fit1.learned & fit1.reveals).any() and list(fit1.trained) == list(fit0.trained)


def test_saved_adapter_loads_with_peft(micro, tmp_path):
    result = unlearn(micro.fresh(), micro.processor, target_of(micro), "siu",
                     train_config=TrainConfig(steps=2, batch_size=4, lr=3e-3, lora_r=4, lora_alpha=8))
    folder = result.save(tmp_path / "adapter")
    meta = (folder / "unlearn.json").read_text()
    assert '"method": "siu"' in meta and '"git_commit"' in meta and '"seed": 0' in meta
    machine = json.loads(meta)["machine"]  # the numbers depend on the CPU's kernels
    assert machine["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert machine["threads"] == torch.get_num_threads() and machine["cpu"]
    assert machine["gpu"] == (torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    reloaded = PeftModel.from_pretrained(micro.fresh(), folder)
    batch = collate_records(micro.processor, result.records[:2])
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "token_mask", "is_forget")}
    with torch.no_grad():
        assert torch.allclose(reloaded(**inputs).logits, result.model(**inputs).logits, atol=1e-5)


@pytest.mark.parametrize("method", ["ga", "ga_kl", "npo"])
def test_forgetting_baselines_lower_the_forget_likelihood(micro, method):
    target = target_of(micro)
    spec = get_method(method)
    records = spec.build_data(target, spec.config)
    assert records and all(reveals(r.answer, target.name) for r in records)
    items = [(r.image, r.question, r.answer) for r in records[:6]]
    before = sum(float(lp.sum()) for lp in answer_logprobs(micro.model, micro.processor, items))
    cfg = TrainConfig(steps=3, batch_size=4, lr=2e-3, lora_r=8, lora_alpha=16, lora_dropout=0.0)
    result = unlearn(micro.fresh(), micro.processor, target, method, train_config=cfg)
    after = sum(float(lp.sum()) for lp in answer_logprobs(result.model, micro.processor, items))
    assert after < before - 1.0, (method, before, after)


def test_every_registered_method_runs_one_step(micro):
    target = target_of(micro)
    for name in METHODS:
        result = unlearn(micro.fresh(), micro.processor, target, name,
                         train_config=TrainConfig(steps=1, batch_size=4, lr=1e-3, lora_r=4, lora_alpha=8))
        assert len(result.history) == 1 and torch.isfinite(torch.tensor(result.history[0]["loss"]))


def test_ablations_and_errors():
    assert get_method("siu_no_token_mask").config.use_token_mask is False
    assert get_method("siu_plain_kl").config.use_vocab_mask is False
    assert "a" not in get_method("siu_no_a").config.data.targets
    with pytest.raises(UnknownNameError, match="'sui'"):
        get_method("sui")
    with pytest.raises(ConfigError):
        TrainConfig(steps=0)


# ------------------------------------------------------------------------------ data order, optimiser


def test_stratified_order_spreads_every_target_over_the_epoch():
    import random

    from siu_lib.train import stratified_order

    targets = list("a" * 9 + "b" * 2 + "c" * 7 + "d" * 7)  # the paper's 25 records
    share = {t: targets.count(t) / len(targets) for t in "abcd"}

    def worst_gap(order):
        """Largest |count of a target among the first m records - m * its share|."""
        seen = {t: 0 for t in "abcd"}
        gap = 0.0
        for m, i in enumerate(order, 1):
            seen[targets[i]] += 1
            gap = max(gap, max(abs(seen[t] - m * share[t]) for t in "abcd"))
        return gap

    for seed in range(50):
        order = stratified_order(targets, random.Random(seed))
        assert sorted(order) == list(range(25))
        assert worst_gap(order) <= 2.0, (seed, "".join(targets[i] for i in order))
        # the two (b) records' keys are half an epoch apart: each other target has at least
        # n/2 - 1 keys in between (4 + 3 + 3 = 10 records), so the positions differ by >= 11
        b_at = [k for k, i in enumerate(order) if targets[i] == "b"]
        assert b_at[1] - b_at[0] >= 11, (seed, b_at)
    # a plain shuffle does clump: the bound above is not met by chance
    gaps = [worst_gap(random.Random(s).sample(range(25), 25)) for s in range(50)]
    assert max(gaps) > 3.0


def test_trainer_draws_stratified_batches_and_passes_adam_settings(micro, tmp_path):
    import random

    from transformers import TrainingArguments

    from siu_lib.methods import SIUConfig
    from siu_lib.train import UnlearningTrainer, _RecordDataset, stratified_order

    spec = get_method("siu")
    recs = spec.build_data(target_of(micro), SIUConfig())
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=6,
                             seed=3, report_to="none", use_cpu=True, adam_beta2=0.95,
                             adam_epsilon=1e-6)
    kw = dict(model=micro.fresh(), args=args, train_dataset=_RecordDataset(recs),
              data_collator=lambda rs: rs, method=spec, method_config=SIUConfig(),
              vocab_mask=torch.ones(8, dtype=torch.bool))
    trainer = UnlearningTrainer(data_order="stratified", **kw)
    loader = trainer.get_train_dataloader()
    targets = [r.target for r in recs]
    for epoch in (0, 1):  # a new stratified order every pass, fixed by the seed and the epoch
        drawn = [r for batch in loader for r in batch]
        expected = stratified_order(targets, random.Random(f"stratified-3-{epoch}"))
        assert [r.question + r.answer for r in drawn] == [recs[i].question + recs[i].answer
                                                          for i in expected]
    assert expected != stratified_order(targets, random.Random("stratified-3-0"))
    opt = trainer.create_optimizer()
    assert all(g["betas"] == (0.9, 0.95) and g["eps"] == 1e-6 for g in opt.param_groups)
    shuffled = UnlearningTrainer(data_order="shuffle", **kw)
    assert isinstance(shuffled._get_train_sampler(), torch.utils.data.RandomSampler)
    with pytest.raises(ConfigError, match="'sorted'"):
        UnlearningTrainer(data_order="sorted", **kw)
    with pytest.raises(ConfigError, match="'sorted'"):
        TrainConfig(data_order="sorted")


def test_ga_ascends_only_on_answers_that_reveal_the_concept(micro):
    from siu_lib.finetune_data import FAKE_NAME_QUESTIONS
    from siu_lib.methods import recognising_records

    c = micro.world.concepts[0]

    def scripted(items):  # names the concept on "who?" questions, says "no" to presence ones
        return [f"This is {c.name}." if q in FAKE_NAME_QUESTIONS
                else f"No, {c.name} is not in the picture; this is Someone Else." for _, q in items]

    base = target_of(micro)
    target = UnlearnTarget(base.concept, base.forget_image, base.others, base.fake_name_pool,
                           original_generate=scripted)
    recs = recognising_records(target, 12, seed=0)
    assert len(recs) == 12 and all(r.question in FAKE_NAME_QUESTIONS for r in recs)
    assert all(r.answer == f"This is {c.name}." for r in recs)

    def says_yes(items):
        return [f"Yes, this is {c.name}." if q not in FAKE_NAME_QUESTIONS else "I am not sure."
                for _, q in items]

    target = UnlearnTarget(base.concept, base.forget_image, base.others, base.fake_name_pool,
                           original_generate=says_yes)
    recs = recognising_records(target, 5, seed=0)
    assert recs and all(r.question not in FAKE_NAME_QUESTIONS and r.answer.startswith("Yes") for r in recs)


def test_train_config_maps_onto_training_arguments(tmp_path):
    """Every TrainConfig field is either a TrainingArguments field under its Hugging Face name
    or read by the trainer; the warm-up is a whole number of steps, and with the paper's 6 steps
    and ratio 0.03 the first step runs at learning rate 0."""
    from dataclasses import fields

    from siu_lib.train import FIXED_TRAINING_ARGUMENTS, TRAINER_FIELDS, TRAINING_ARGUMENTS

    assert set(TRAINING_ARGUMENTS) | set(TRAINER_FIELDS) == {f.name for f in fields(TrainConfig)}
    assert not set(TRAINING_ARGUMENTS) & set(TRAINER_FIELDS)
    cfg = TrainConfig(steps=6, batch_size=4, lr=2e-3, weight_decay=0.01, seed=7)
    args = cfg.training_arguments(tmp_path, use_cuda=False)
    assert (args.max_steps, args.per_device_train_batch_size, args.learning_rate, args.weight_decay,
            args.seed, args.data_seed) == (6, 4, 2e-3, 0.01, 7, 7)
    assert args.lr_scheduler_type == "cosine" and args.use_cpu and not args.bf16
    assert (args.logging_strategy.value, args.save_strategy.value, args.report_to) == ("no", "no", [])
    assert (args.remove_unused_columns, args.dataloader_num_workers, args.max_grad_norm) == (
        FIXED_TRAINING_ARGUMENTS["remove_unused_columns"], 0, 1.0)
    assert isinstance(args.warmup_steps, int) and args.warmup_steps == cfg.warmup_steps() == 1
    assert TrainConfig(steps=35).warmup_steps() == 2 and TrainConfig(steps=6, warmup_ratio=0.0).warmup_steps() == 0
    # the schedule: step 1 at lr 0, the peak at step 2, then cosine decay
    from transformers import get_scheduler

    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = get_scheduler(args.lr_scheduler_type, opt, num_warmup_steps=args.warmup_steps,
                          num_training_steps=args.max_steps)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == 0.0 and lrs[1] == pytest.approx(cfg.lr) and lrs[1] > lrs[2] > lrs[5] > 0
    with pytest.raises(ConfigError, match="1.5"):
        TrainConfig(warmup_ratio=1.5)
