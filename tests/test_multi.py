"""Multi-concept unlearning on the pre-trained micro world: at once and one request after
another, the merged data, the union of the vocabulary masks and the specificity it keeps."""

from __future__ import annotations

import pytest
import torch

from siu_lib.bench import load_benchmark, write_synthetic
from siu_lib.errors import ConfigError
from siu_lib.evaluate import EvalConfig, evaluate_unlearning
from siu_lib.models import name_token_ids
from siu_lib.multi import multi_concept_runs
from siu_lib.runs import make_target
from siu_lib.train import TrainConfig, unlearn, unlearn_sequentially

STRONG = TrainConfig(steps=6, batch_size=4, lr=2e-2, projector_lr=1e-3, lora_r=8, lora_alpha=16,
                     lora_dropout=0.0)


@pytest.fixture(scope="module")
def bench(micro, tmp_path_factory):
    return load_benchmark(write_synthetic(micro.world, tmp_path_factory.mktemp("bench"), progress=False))


def test_one_run_merges_every_target_s_records_and_masks_every_name(micro, bench):
    targets = [make_target(bench, cid, micro.model, micro.processor, micro.world.fake_names) for cid in ("c00", "c01")]
    single = unlearn(micro.fresh(), micro.processor, targets[0], "siu", train_config=STRONG)
    both = unlearn(micro.fresh(), micro.processor, targets, "siu", train_config=STRONG)
    assert len(both.records) == 2 * len(single.records)
    fakes = {r.mask_span for r in both.records if r.target == "a"}
    assert len(fakes) == 2  # each concept keeps its own fake name
    ids = set(both.metadata["vocab_mask_ids"])
    for t in targets:
        assert set(name_token_ids(micro.processor.tokenizer, t.name)) <= ids
    with pytest.raises(ConfigError):
        unlearn(micro.fresh(), micro.processor, [], "siu", train_config=STRONG)


def test_requests_one_after_another_each_start_from_the_last_model(micro, bench):
    targets = [make_target(bench, cid, micro.model, micro.processor, micro.world.fake_names) for cid in ("c00", "c01")]
    results = unlearn_sequentially(micro.fresh(), micro.processor, targets, "siu", train_config=STRONG)
    assert len(results) == 2 and all(len(r.history) == STRONG.steps for r in results)
    assert not hasattr(results[-1].model, "peft_config")  # adapters merged after each request
    last = results[-1].model
    assert any(not torch.equal(a, b) for a, b in zip(last.parameters(), micro.model.parameters()))


def test_forgotten_concepts_leave_the_others_recognition_items(micro, bench):
    cfg = EvalConfig(n_generality_images=2, n_cdis_images=1, n_other_images=2, n_vqa_items=4)
    everyone = evaluate_unlearning(micro.model, micro.model, micro.processor, bench, "c00", cfg)
    forgot = evaluate_unlearning(micro.model, micro.model, micro.processor, bench, "c00", cfg,
                                 forgotten=["c00", "c01"])
    count = lambda rep, g: sum(x["group"] == g for x in rep.generations)  # noqa: E731
    assert count(forgot, "spec_recognition") == count(everyone, "spec_recognition") - cfg.n_other_images
    assert count(forgot, "spec_yesno") == count(everyone, "spec_yesno") - cfg.n_other_images
    assert count(forgot, "spec_vqa") == count(everyone, "spec_vqa")  # visual QA on their pictures stays
    assert count(forgot, "spec_facts") == count(everyone, "spec_facts")


def test_multi_concept_rows_by_count_and_mode(micro, bench):
    cfg = EvalConfig(n_generality_images=2, n_cdis_images=1, n_other_images=1, n_vqa_items=4)
    rows = multi_concept_runs("micro", micro.model, micro.processor, bench, micro.world.fake_names, ["siu"],
                              STRONG, cfg, counts=[2], progress=False)
    assert list(zip(rows.method, rows["mode"])) == [("original", "-"), ("siu", "at_once"), ("siu", "sequential")]
    at_once, seq = rows.iloc[1], rows.iloc[2]
    assert at_once.steps == seq.steps == 2 * STRONG.steps
    assert at_once.records == seq.records
    orig = rows.iloc[0]
    assert orig.specificity_ratio == pytest.approx(1.0)
    assert at_once.generality_em > orig.generality_em  # both concepts are forgotten more than before
    assert {"spec_recognition", "spec_yesno", "spec_facts"} <= set(rows.columns)
    # with every concept forgotten no other one is left to recognise or verify: those tasks'
    # columns are left out, and no cell is missing
    n = len(bench.concepts)
    everyone = multi_concept_runs("micro", micro.model, micro.processor, bench, micro.world.fake_names, ["siu"],
                                  STRONG, cfg, counts=[2, n], modes=["at_once"], progress=False)
    assert list(everyone.concepts) == [2, 2, n, n]
    assert not {"spec_recognition", "spec_yesno"} & set(everyone.columns) and "spec_facts" in everyone.columns
    assert not everyone.isna().any().any()
    with pytest.raises(ConfigError, match="counts"):
        multi_concept_runs("micro", micro.model, micro.processor, bench, [], ["siu"], STRONG, cfg, counts=[9])
    with pytest.raises(ConfigError, match="mode"):
        multi_concept_runs("micro", micro.model, micro.processor, bench, [], ["siu"], STRONG, cfg, counts=[1],
                           modes=["later"])
