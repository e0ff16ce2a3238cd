"""The chain under a paper-scale profile (``--profile llava-7b``), end to end: the micro model
saved as a LLaVA folder stands in for the downloaded checkpoint and the micro world's instance
for the ``paper`` instance with the user's images. The same notebooks run as under the embedded
profiles; those that need a synthetic world are skipped."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from siu_lib.bench.synthetic import write_synthetic
from siu_lib.chain import needs_synthetic, run_chain
from siu_lib.errors import ConfigError, UnknownNameError
from siu_lib.scale import require_synthetic, resolve_profile

#: the smallest protocol that still runs every notebook's every step
PROTOCOL = ("dtype=float32 gradient_checkpointing=false eval_images=2 unlearn_concepts=1 table_concepts=1 "
            "further_concepts=1 step_concepts=1 step_grid=2 multi_counts=1,2 seeds=0 unlearn.steps=2 "
            "unlearn.batch_size=2 unlearn.lora_r=4 unlearn.lora_alpha=8")
SKIPPED = {"01_build_mmubench.ipynb", "02_pretrain_embedded_mllm.ipynb", "07_cases.ipynb", "09_frontiers.ipynb"}


@pytest.fixture()
def stand_in(micro, tmp_path, monkeypatch):
    """``llava-7b`` overrides pointing at the micro model's folder and the micro world's
    instance, with every result of the run under ``tmp_path/out``."""
    folder = tmp_path / "llava-1.5-7b-hf"
    micro.model.save_pretrained(folder)
    micro.processor.save_pretrained(folder)
    instance = write_synthetic(micro.world, tmp_path / "instance", progress=False)
    monkeypatch.setenv("SIU_RESULTS_DIR", str(tmp_path / "out" / "results"))
    return f"model_path={folder} bench_dir={instance} {PROTOCOL}", tmp_path / "out"


def test_the_chain_runs_every_notebook_a_real_model_can_run(stand_in):
    overrides, out = stand_in
    log: list[str] = []
    steps = run_chain("llava-7b", overrides, out_root=out, log=log.append, progress=False)
    status = {s.notebook: (s.status, s.reason) for s in steps}
    assert {n for n, (st, why) in status.items() if st == "skipped"} == SKIPPED
    assert all(why == "needs a synthetic world" for n, (_, why) in status.items() if n in SKIPPED)
    assert all(st == "ran" for n, (st, _) in status.items() if n not in SKIPPED), status
    name = resolve_profile("llava-7b", overrides).name
    results = out / "results" / name
    table1 = pd.read_csv(results / "table1.csv")
    assert set(table1.model) == {"llava-7b"}
    assert set(table1.method) == {"original", "siu", "po", "ga", "ga_kl", "npo", "gd"}
    for csv in results.glob("*.csv"):  # no missing value reaches a table
        assert not pd.read_csv(csv).isna().any().any(), csv.name
    assert not (results / "never_seen.csv").exists() and (results / "siu_targets.csv").is_file()
    table4 = pd.read_csv(results / "table4.csv")
    assert "mia_rouge" in table4 and "multilingual_leak" in table4
    assert not [c for c in table4 if c.startswith("mia_auc_")]  # no non-members for a real model
    claims = pd.read_csv(results / "claims.csv").set_index("id")
    # the butterfly effect needs group photos, the scale claim both sizes: the rest are measured
    assert claims.loc["BF", "verdict"] == claims.loc["T1-scale", "verdict"] == "not measured"
    assert claims.loc["T1-scale", "ours"] == "one model size only (llava-7b)"
    assert (claims.drop(index=["BF", "T1-scale"]).verdict != "not measured").all()
    runs = list((results / "runs").glob("llava-7b_siu_*.json"))
    assert runs and json.loads(runs[0].read_text())["train_config"]["lora_r"] == 4
    # nothing changed: the second run skips every notebook, the same four as not applicable
    again = run_chain("llava-7b", overrides, out_root=out, log=log.append, progress=False)
    assert all(s.status == "skipped" for s in again)
    assert sum(s.reason == "inputs unchanged" for s in again) == len(again) - len(SKIPPED)


def test_a_synthetic_world_notebook_says_so_and_stops_under_a_real_model():
    from siu_lib.chain import chain_notebooks

    assert {p.name for p in chain_notebooks() if needs_synthetic(p)} == SKIPPED
    for path in chain_notebooks():
        if path.name in SKIPPED:
            first = json.loads(path.read_text())["cells"][0]
            assert "Needs the synthetic world" in "".join(first["source"])
    with pytest.raises(ConfigError, match="notebook 02 needs the synthetic world.*'llava-7b'"):
        require_synthetic(resolve_profile("llava-7b"), "notebook 02")
    require_synthetic(resolve_profile("smoke"), "notebook 02")  # an embedded profile has one


def test_an_unknown_profile_stops_the_chain_before_anything_runs(tmp_path):
    with pytest.raises(UnknownNameError, match="'llava-70b'.*llava-13b"):
        run_chain("llava-70b", "", out_root=tmp_path, log=lambda _: None)
    assert not (tmp_path / "chain").exists()
