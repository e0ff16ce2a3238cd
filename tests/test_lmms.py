"""lmms-eval at paper scale, offline: the command it is called with and the results it writes."""

from __future__ import annotations

import json

import pytest

from siu_lib.errors import ConfigError, DataFormatError
from siu_lib.lmms import (SPECIFICITY_TASKS, find_results, lmms_eval_command, read_results, table7_rows,
                          task_scores)


def test_the_command_names_the_checkpoint_tasks_and_output(monkeypatch, tmp_path):
    monkeypatch.setenv("SIU_LMMS_PYTHON", "/envs/lmms/bin/python")
    cmd = lmms_eval_command(tmp_path / "merged", tmp_path / "out", ("gqa", "pope"), batch_size=2,
                            model_args={"device_map": "auto"})
    assert cmd[:3] == ["/envs/lmms/bin/python", "-m", "lmms_eval"]
    opts = dict(zip(cmd[3::2], cmd[4::2]))
    assert opts["--model"] == "llava_hf" and opts["--tasks"] == "gqa,pope" and opts["--batch_size"] == "2"
    assert opts["--model_args"] == f"pretrained={tmp_path / 'merged'},device_map=auto"
    assert opts["--output_path"] == str(tmp_path / "out") and cmd[-1] == "--log_samples"
    assert len(SPECIFICITY_TASKS) == 8 and {"gqa", "vqav2_val", "pope", "mme"} <= set(SPECIFICITY_TASKS)
    for bad in ((), ("gqa,pope",), ("",)):
        with pytest.raises(ConfigError, match="tasks"):
            lmms_eval_command("m", "o", bad)
    with pytest.raises(ConfigError, match="batch_size"):
        lmms_eval_command("m", "o", ("gqa",), batch_size=0)


def _results(tmp_path, name: str, results: dict):
    folder = tmp_path / "out" / "llava_hf"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps({"results": results, "config": {"model": "llava_hf"}}))
    return path


def test_results_are_read_back_into_table_7(tmp_path):
    _results(tmp_path, "20260101_000000_results.json", {"gqa": {"exact_match,none": 0.1}})
    path = _results(tmp_path, "20260102_000000_results.json", {
        "gqa": {"alias": "gqa", "exact_match,none": 0.62, "exact_match_stderr,none": 0.004},
        "pope": {"alias": "pope", "pope_accuracy,none": 0.86, "pope_f1_score,none": 0.85, "pope_accuracy_stderr,none": "N/A"},
        "mme": {"alias": "mme", "mme_perception_score,none": 1510.0, "mme_cognition_score,none": 355.0},
        "my_local_task": {"alias": "x", "acc,none": 0.5}})
    assert find_results(tmp_path / "out") == path
    table = read_results(path)
    gqa = table[(table.task == "gqa")].iloc[0]
    assert (gqa.metric, gqa["filter"], gqa.value, gqa.stderr) == ("exact_match", "none", 0.62, 0.004)
    assert "alias" not in set(table.metric) and len(table) == 6
    assert table[table.metric == "pope_accuracy"].stderr.isna().all()  # "N/A" is no number
    scores = task_scores(table)
    assert scores == pytest.approx({"gqa": 62.0, "pope": 86.0, "mme": 75.5, "my_local_task": 50.0})
    t7 = table7_rows({"original": scores, "siu": {**scores, "gqa": 50.0}}).set_index("method")
    assert t7.loc["original", "mean"] == pytest.approx((62 + 86 + 75.5 + 50) / 4)
    assert t7.loc["siu", "ratio"] == pytest.approx(t7.loc["siu", "mean"] / t7.loc["original", "mean"])
    assert list(t7.columns[:4]) == ["gqa", "pope", "mme", "my_local_task"]


def test_bad_results_name_what_is_wrong(tmp_path):
    with pytest.raises(DataFormatError, match="no lmms-eval results file"):
        find_results(tmp_path)
    (tmp_path / "x_results.json").write_text(json.dumps({"versions": {}}))
    with pytest.raises(DataFormatError, match="no 'results' mapping"):
        read_results(tmp_path / "x_results.json")
    path = _results(tmp_path, "r_results.json", {"pope": {"pope_f1_score,none": 0.8}})
    with pytest.raises(DataFormatError, match="'pope'.*pope_f1_score"):
        task_scores(read_results(path))
