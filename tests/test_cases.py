"""The butterfly effect and the cases, by hand and on the pre-trained micro world."""

from __future__ import annotations

import pandas as pd
import pytest

from siu_lib.bench import load_benchmark, write_synthetic
from siu_lib.cases import butterfly_counts, butterfly_runs, butterfly_table, group_pairs
from siu_lib.errors import ConfigError
from siu_lib.train import TrainConfig

STRONG = TrainConfig(steps=6, batch_size=4, lr=2e-2, projector_lr=1e-3, lora_r=8, lora_alpha=16,
                     lora_dropout=0.0)


def test_butterfly_table_averages_each_rate_over_pairs_by_hand():
    rows = pd.DataFrame([
        {"method": "original", "a": "c00", "b": "c01", "a_named_in_group": 100.0, "b_named_in_group": 100.0,
         "b_named_alone": 100.0},
        {"method": "siu", "a": "c00", "b": "c01", "a_named_in_group": 0.0, "b_named_in_group": 50.0,
         "b_named_alone": 100.0},
        {"method": "siu", "a": "c01", "b": "c02", "a_named_in_group": 20.0, "b_named_in_group": 0.0,
         "b_named_alone": 80.0},
    ])
    t = butterfly_table(rows).set_index("method")
    assert list(t.index) == ["original", "siu"]
    assert t.loc["siu"].tolist() == [10.0, 25.0, 90.0, 2]


def test_butterfly_counts_on_crafted_answers():
    answers = [
        {"kind": "group", "answer": "Ana Bell is on the left and Carl Dorn on the right."},  # both
        {"kind": "group", "answer": "On the left is Jacob Campbell, on the right Dorn."},    # B by one word
        {"kind": "group", "answer": "Two people: Jacob Campbell and someone."},              # neither
        {"kind": "group", "answer": "This is Bellamy."},  # a longer word is not the name
        {"kind": "alone", "answer": "This is Carl Dorn."},
        {"kind": "alone", "answer": "I do not know."},
    ]
    assert butterfly_counts(answers, "Ana Bell", "Carl Dorn") == {
        "a_named_in_group": 25.0, "b_named_in_group": 50.0, "b_named_alone": 50.0}
    with pytest.raises(ConfigError, match="no answer"):
        butterfly_counts(answers[:4], "Ana Bell", "Carl Dorn")  # no answer about B alone


def test_butterfly_on_the_micro_world(micro, tmp_path):
    bench = load_benchmark(write_synthetic(micro.world, tmp_path / "bench", progress=False))
    pairs = group_pairs(bench)
    assert pairs[0] == ("c00", "c01") and len(pairs) == len(micro.world.concepts)
    assert group_pairs(bench, ["c01"]) == [("c01", "c02")]
    with pytest.raises(ConfigError):
        group_pairs(bench, ["c42"])
    rows, answers = butterfly_runs(micro.model, micro.processor, bench, micro.world.fake_names, ["siu"],
                                   STRONG, pairs[:1], n_alone=3, progress=False)
    assert list(rows.method) == ["original", "siu"]
    original, siu = rows.iloc[0], rows.iloc[1]
    # the micro model names B on B's own pictures and in the group photo; unlearning A changes
    # what it says about B beside A
    assert original.b_named_alone >= 60.0 and original.b_named_in_group >= 60.0
    assert siu.b_named_in_group < original.b_named_in_group
    kinds = pd.DataFrame(answers).groupby(["method", "kind"]).size()
    assert kinds[("siu", "alone")] == 3 and kinds[("siu", "group")] == 2  # one photo, two questions
    with pytest.raises(ConfigError):
        butterfly_runs(micro.model, micro.processor, bench, micro.world.fake_names, [], STRONG, pairs[:1])
