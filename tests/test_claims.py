"""The paper's claims against crafted result tables: each check's verdict by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from siu_lib.claims import (CLAIMS, VERDICTS, check_bf, check_f4, check_f23, check_t1_all, check_t1_em,
                            check_t1_scale, check_t1_util, check_t2, check_t3, check_t4_jb, check_t4_mia,
                            paper_claims, verdict)

METHODS = ("original", "po", "ga", "ga_kl", "npo", "gd", "siu")


def _table1(em_siu: dict[str, float], spec_siu: float = 90.0) -> pd.DataFrame:
    """Two sizes; every baseline at EM 50, specificity 80, fluency 5, diversity 90."""
    rows = []
    for model in ("tiny", "small"):
        for m in METHODS:
            siu, orig = m == "siu", m == "original"
            rows.append({"model": model, "method": m,
                         "efficacy": 100.0 if siu else 0.0 if orig else 50.0,
                         "generality_em": em_siu[model] if siu else 0.0 if orig else 50.0,
                         "generality_geval": 1.0 if siu else 5.0 if orig else 3.0,
                         "generality_cdis": 2.0 if siu else 0.0 if orig else 1.0,
                         "specificity": spec_siu if siu else 100.0 if orig else 80.0,
                         "fluency": 2.0 if siu else 1.5 if orig else 5.0,
                         "diversity": 95.0 if siu else 100.0 if orig else 90.0,
                         "factual_retention": 100.0 if siu else 100.0 if orig else 60.0})
    return pd.DataFrame(rows)


def test_verdict_by_hand():
    assert verdict([True, True]) == "agree" and verdict([False, False]) == "disagree"
    assert verdict([True, False]) == "partly" and verdict([]) == "not measured"
    assert set(VERDICTS) == {"agree", "partly", "disagree", "not measured"}


def test_table1_claims_by_hand():
    assert check_t1_em(_table1({"tiny": 60.0, "small": 70.0}))[1] == "agree"
    assert check_t1_em(_table1({"tiny": 60.0, "small": 40.0}))[1] == "partly"
    assert check_t1_em(_table1({"tiny": 10.0, "small": 40.0}))[1] == "disagree"
    ours, result = check_t1_em(_table1({"tiny": 60.0, "small": 70.0}))
    assert "tiny 60.0%" in ours and "10 of 10" in ours and result == "agree"
    assert check_t1_util(_table1({"tiny": 60.0, "small": 70.0}))[1] == "agree"
    assert check_t1_util(_table1({"tiny": 60.0, "small": 70.0}, spec_siu=70.0))[1] == "partly"
    assert check_t1_all(_table1({"tiny": 60.0, "small": 70.0}))[1] == "agree"
    assert check_t1_all(_table1({"tiny": 10.0, "small": 10.0}, spec_siu=70.0))[1] == "partly"
    t = _table1({"tiny": 60.0, "small": 70.0})
    t.loc[(t.model == "small") & (t.method == "siu"), "specificity"] = 95.0  # small drops 5, tiny 10
    assert check_t1_scale(t) == ("SIU's specificity drop tiny 10.0 points; small 5.0 points", "agree")
    assert check_t1_scale(_table1({"tiny": 60.0, "small": 70.0}, spec_siu=90.0))[1] == "agree"  # a tie
    t.loc[(t.model == "small") & (t.method == "siu"), "specificity"] = 85.0
    assert check_t1_scale(t)[1] == "disagree"
    assert check_t1_scale(t[t.model == "tiny"]) == ("one model size only (tiny)", "not measured")


def test_ablation_steps_and_further_concept_claims_by_hand():
    t2 = pd.DataFrame({"method": ["siu", "siu_no_token_mask", "siu_no_vocab_mask"],
                       "generality_em": [70.0, 60.0, 75.0], "specificity": [90.0, 95.0, 92.0]})
    assert check_t2(t2)[1] == "partly"  # no token mask hurts EM; no vocab mask hurts neither
    steps = pd.DataFrame([{"method": m, "steps": n, "fluency": f, "diversity": d}
                          for m, rows in {"ga": [(6, 2.0, 95.0), (35, 9.0, 40.0)],
                                          "ga_kl": [(6, 2.0, 95.0), (35, 3.0, 80.0)],
                                          "siu": [(6, 3.0, 98.0), (35, 3.5, 96.0)]}.items()
                          for n, f, d in rows])
    assert check_f23(steps)[1] == "agree"
    steps.loc[(steps.method == "siu") & (steps.steps == 35), "diversity"] = 50.0
    assert check_f23(steps)[1] == "partly"
    f4 = pd.DataFrame({"concept": ["c05"] * 3 + ["c06"] * 3, "method": ["siu", "ga", "po"] * 2,
                       "generality_em": [90.0, 50.0, 60.0, 40.0, 50.0, 10.0]})
    assert check_f4(f4) == ("SIU highest on 1 of 2 concepts", "partly")


def test_multi_concept_attack_and_butterfly_claims_by_hand():
    t3 = pd.DataFrame({"method": ["original", "po", "ga", "siu"], "generality_em": [0.0, 40.0, 60.0, 70.0],
                       "specificity": [100.0, 30.0, 20.0, 35.0], "specificity_ratio": [1.0, 0.3, 0.2, 0.35]})
    assert check_t3(t3, single_ratio=0.9) == (
        "SIU specificity 35.0% (ratio to the original 0.350), generality EM 70.0%; one concept: ratio 0.900", "agree")
    assert check_t3(t3, single_ratio=0.3)[1] == "partly"  # the ratio rose: no drop
    t3.loc[t3.method == "siu", ["generality_em", "specificity"]] = [10.0, 5.0]
    assert check_t3(t3, single_ratio=0.3)[1] == "disagree"
    t4 = pd.DataFrame({"model": "tiny", "method": ["original", "ga", "po", "siu"], "mia_rouge": [1.0, 0.3, 0.2, 0.1],
                       "multilingual_leak": [100.0, 40.0, 30.0, 50.0], "multihop_asr": [80.0, 10.0, 20.0, 0.0]})
    assert check_t4_mia(t4)[1] == "agree"
    assert check_t4_jb(t4)[1] == "partly"  # multilingual above both, multi-hop below both
    t4.loc[t4.method == "siu", "mia_rouge"] = 0.5
    assert check_t4_mia(t4)[1] == "disagree"
    bf = pd.DataFrame({"method": ["original", "siu"], "a_named_in_group": [100.0, 0.0],
                       "b_named_in_group": [90.0, 40.0], "b_named_alone": [95.0, 90.0]})
    assert check_bf(bf)[1] == "agree"
    bf.loc[1, "b_named_alone"] = 50.0
    assert check_bf(bf)[1] == "partly"


def test_paper_claims_has_a_row_for_every_claim_and_says_what_is_missing(tmp_path):
    _table1({"tiny": 60.0, "small": 70.0}).to_csv(tmp_path / "table1.csv", index=False)
    claims = paper_claims(tmp_path)
    assert list(claims.id) == ["T1-em", "T1-util", "T1-all", "T1-scale", "T2", "F23", "F4", "T3", "T4-mia",
                               "T4-jb", "BF"] == [c[0] for c in CLAIMS]
    got = claims.set_index("id")
    assert got.loc["T1-em", "verdict"] == "agree" and got.loc["T1-em", "paper"] == "SIU EM > 99%"
    assert got.loc["T3", "paper"] == "SIU specificity 24.9%" and got.loc["BF", "paper"] == "qualitative"
    assert got.loc["T2", "verdict"] == "not measured" and got.loc["T2", "ours"] == "no table2.csv"
    assert not claims.isna().any().any()
    assert set(claims.verdict) <= {"agree", "partly", "disagree", "not measured"}
    with pytest.raises(KeyError):
        got.loc["T5"]
