"""The paper's tables from per-run rows, by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from siu_lib.errors import UnknownNameError
from siu_lib.tables import (METHOD_ORDER, TABLE1_METHODS, mean_std_table, order_methods, plus_minus,
                            table1_jobs, table4, verdict_text)


def test_table1_jobs_cover_every_run_in_run_order():
    jobs = table1_jobs(["tiny", "small"], ["c00"], [0, 1], methods=("ga", "siu"))
    assert jobs == [("tiny", "c00", "ga", 0), ("tiny", "c00", "ga", 1), ("tiny", "c00", "siu", 0),
                    ("tiny", "c00", "siu", 1), ("small", "c00", "ga", 0), ("small", "c00", "ga", 1),
                    ("small", "c00", "siu", 0), ("small", "c00", "siu", 1)]
    assert len(table1_jobs({"tiny": 1}, iter(["c00", "c01"]), iter([0, 1, 2]))) == 2 * 3 * len(TABLE1_METHODS)
    assert METHOD_ORDER[0] == "original" and METHOD_ORDER[-1] == "siu"


def _runs() -> pd.DataFrame:
    return pd.DataFrame([
        {"model": "tiny", "method": "siu", "seed": 0, "efficacy": 80.0},
        {"model": "small", "method": "ga", "seed": 0, "efficacy": 10.0},
        {"model": "tiny", "method": "original", "seed": 0, "efficacy": 5.0},
        {"model": "tiny", "method": "siu", "seed": 1, "efficacy": 100.0},
        {"model": "tiny", "method": "po", "seed": 0, "efficacy": 30.0},
    ])


def test_rows_are_ordered_by_model_then_the_paper_s_method_order():
    ordered = order_methods(_runs())
    assert list(zip(ordered.model, ordered.method, ordered.seed)) == [
        ("small", "ga", 0), ("tiny", "original", 0), ("tiny", "po", 0), ("tiny", "siu", 0), ("tiny", "siu", 1)]
    with pytest.raises(UnknownNameError, match="'rmu'"):
        order_methods(pd.concat([_runs(), pd.DataFrame([{"model": "tiny", "method": "rmu"}])]))


def test_mean_std_and_plus_minus_by_hand():
    table = mean_std_table(order_methods(_runs()), ["model", "method"], ["efficacy"])
    siu = table[(table.model == "tiny") & (table.method == "siu")].iloc[0]
    assert (siu.efficacy, siu.efficacy_std) == (90.0, 10.0)  # population std over the two seeds
    assert list(table.method) == ["ga", "original", "po", "siu"]
    printed = plus_minus(table, ["efficacy"])
    assert printed.loc[("tiny", "siu"), "efficacy"] == "90.0 ± 10.0"
    assert printed.loc[("small", "ga"), "efficacy"] == "10.0 ± 0.0"


def test_table4_by_hand():
    runs = pd.DataFrame([
        {"model": "tiny", "method": "never_seen", "concept": "c00", "leak_none": 0.0, "mia_kept": 10},
        {"model": "tiny", "method": "siu", "concept": "c00", "leak_none": 10.0, "mia_kept": 4},
        {"model": "tiny", "method": "siu", "concept": "c01", "leak_none": 30.0, "mia_kept": 6},
        {"model": "tiny", "method": "original", "concept": "c00", "leak_none": 90.0, "mia_kept": 18},
    ])
    table = table4(runs, ["leak_none"])
    assert list(table.method) == ["original", "siu", "never_seen"]  # the reference last
    siu = table.set_index("method").loc["siu"]
    assert (siu.leak_none, siu.leak_none_std, siu.mia_kept, siu.runs) == (20.0, 10.0, 5.0, 2)
    with pytest.raises(UnknownNameError, match="leak_flip"):
        table4(runs, ["leak_flip"])


def test_verdict_text_names_each_claim_that_does_not_hold():
    claims = pd.DataFrame([("tiny", "A holds", True), ("small", "B holds", False)],
                          columns=["model", "claim", "holds here"])
    assert verdict_text(claims).splitlines()[1:] == ["  - [small] B holds"]
    assert verdict_text(claims.iloc[:1]) == "Every claim checked above holds on the embedded models."


def test_fig1_shows_each_target_s_record_and_every_metric_and_attack():
    from siu_lib.attacks import ATTACKS
    from siu_lib.finetune_data import build_siu_records
    from siu_lib.metrics import METRICS, TABLE1_METRICS
    from siu_lib.plots import TARGET_TITLES, plot_pipeline
    from siu_lib.world import World, WorldConfig

    world = World(WorldConfig(world_seed=3, n_concepts=4, images_per_concept=6, image_size=32))
    concept = world.concepts[0]
    records = build_siu_records(concept, world.forget_image(concept), world.concepts[1:], world.fake_names)
    metrics, attacks = [METRICS[m].label for m in TABLE1_METRICS], [METRICS[a].label for a in ATTACKS]
    fig = plot_pipeline(concept.name, world.forget_image(concept), records, metrics, attacks, steps=6)
    text = "\n".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert all(title in text for title in TARGET_TITLES.values())
    assert all(label in text for label in metrics + attacks)
    fake = next(r for r in records if r.target == "a")
    assert fake.mask_span in text.replace("\n", " ") and concept.name in text.replace("\n", " ")
    assert len(fig.axes[1].images) == 1  # the forget image itself


def test_concept_std_is_the_spread_of_the_concepts_means_by_hand():
    from siu_lib.tables import concept_std

    runs = pd.DataFrame({"model": "tiny", "method": "siu", "concept": ["c00", "c00", "c01", "c01"],
                         "seed": [0, 1, 0, 1], "generality_em": [10.0, 30.0, 50.0, 70.0]})
    got = concept_std(runs, ["model", "method"], ["generality_em"])
    assert got.loc[0, "generality_em_concept_std"] == pytest.approx(20.0)  # means 20 and 60
    one = concept_std(runs[runs.concept == "c00"], ["model", "method"], ["generality_em"])
    assert one.loc[0, "generality_em_concept_std"] == 0.0


def test_fig4_draws_a_bar_per_concept_and_method_with_the_seeds_std():
    from siu_lib.plots import plot_em_per_concept

    runs = pd.DataFrame({"concept": ["c05"] * 4 + ["c06"] * 4, "method": ["siu", "siu", "ga", "ga"] * 2,
                         "seed": [0, 1] * 4, "generality_em": [80.0, 100.0, 40.0, 40.0, 60.0, 60.0, 0.0, 20.0]})
    fig = plot_em_per_concept(runs, ("siu", "ga"))
    bars = fig.axes[0].patches
    assert sorted(round(b.get_height(), 6) for b in bars) == [10.0, 40.0, 60.0, 90.0]
    from matplotlib.container import ErrorbarContainer
    errors = [c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer)]
    assert len(errors) == 2 and [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["c05", "c06"]
    # the std over seeds, as in the tables (population std): siu on c05 (80, 100) and ga on c06
    # (0, 20), both 10
    spans = sorted(round(float(seg[1, 1] - seg[0, 1]), 3) for c in errors for seg in c.lines[2][0].get_segments())
    assert spans == pytest.approx([0.0, 0.0, 20.0, 20.0], abs=0.01)


def test_best_at_ratio_by_hand():
    from siu_lib.analysis import best_at_ratio

    table = pd.DataFrame({"method": ["ga", "ga", "ga", "po", "po"], "lr": [1e-3, 2e-3, 4e-3, 1e-3, 2e-3],
                          "generality_em": [40.0, 60.0, 90.0, 30.0, 50.0],
                          "recognition_ratio": [0.99, 0.96, 0.80, 0.90, 0.85]})
    got = best_at_ratio(table).set_index("method")
    assert got.loc["ga"].tolist() == [True, 2e-3, 60.0, 0.96]
    assert got.loc["po"].tolist() == [False, 1e-3, 30.0, 0.90]  # none keeps 0.95: the most keeping one
