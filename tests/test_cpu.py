"""The pinned CPU code path (siu_lib.cpu): the same numbers on any x86-64 CPU with AVX2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from siu_lib import cpu
from siu_lib.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "cpu_canary.json"


@pytest.mark.slow
def test_the_cross_cpu_canary_matches_its_golden_file():
    """A fixed 40-step training run gives the committed losses and weights to about one float32
    rounding step. It is bit-identical on the pinned path, whichever CPU runs it; on another
    path it fails and says by how much (``scripts/cpu_canary.py --write`` regenerates it)."""
    if cpu.requested_path() == "native":
        pytest.skip(f"{cpu.SWITCH}=native: the canary checks the pinned path")
    golden = json.loads(GOLDEN.read_text())
    measured = cpu.canary_run()
    problems = cpu.compare_canary(measured, golden)
    assert not problems, f"CPU path {cpu.cpu_path_info()}: " + "; ".join(problems)
    # the golden file was itself made on the pinned path
    assert golden["machine"]["cpu_path"]["path"] == "avx2"
    assert cpu.current_path() == "avx2"


def test_compare_canary_reports_each_kind_of_difference():
    golden = {"spec": dict(cpu.CANARY), "losses": [4.0, 2.0, 1.0], "weight_abs_sum": 100.0}
    assert cpu.compare_canary(golden, golden) == []
    # a last-bit difference (below the tolerance) is no difference
    same = {**golden, "losses": [4.0, 2.0 * (1 + 5e-8), 1.0]}
    assert cpu.compare_canary(same, golden) == []
    moved = {**golden, "losses": [4.0, 2.0, 1.0 + 3e-6], "weight_abs_sum": 100.001}
    problems = cpu.compare_canary(moved, golden)
    assert len(problems) == 2
    assert "1 of 3 losses" in problems[0] and "step 2" in problems[0] and "3e-06" in problems[0]
    assert "absolute sum" in problems[1] and "1e-05" in problems[1]
    other = {**golden, "spec": {**cpu.CANARY, "steps": 41}}
    assert "spec differs" in cpu.compare_canary(other, golden)[0]


def test_the_pin_sets_only_what_the_user_left_unset():
    env: dict[str, str] = {}
    assert cpu.pin_cpu_path(env) == list(cpu.PINNED_ENV)
    assert env == cpu.PINNED_ENV
    # the user's own setting wins and is left as it is
    env = {"MKL_CBWR": "AUTO"}
    assert cpu.pin_cpu_path(env) == ["ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"]
    assert env["MKL_CBWR"] == "AUTO" and env["ATEN_CPU_CAPABILITY"] == "avx2"
    # the switch turns the pin off
    env = {cpu.SWITCH: "native"}
    assert cpu.pin_cpu_path(env) == [] and env == {cpu.SWITCH: "native"}
    with pytest.raises(ConfigError, match="'avx512'"):
        cpu.pin_cpu_path({cpu.SWITCH: "avx512"})


def test_this_process_runs_the_pinned_path_and_records_it():
    from siu_lib.results import machine_info

    if cpu.requested_path() == "native":
        pytest.skip(f"{cpu.SWITCH}=native")
    info = machine_info()["cpu_path"]
    assert info["path"] == "avx2" and info["capability"] == "AVX2" and info["requested"] == "avx2"
    assert info["threads"] == cpu.PINNED_THREADS
    assert {k: v["value"] for k, v in info["env"].items()} == {
        k: os.environ[k] for k in cpu.PINNED_ENV}
    assert all(v["set_by"] in ("siu_lib", "environment") for v in info["env"].values())


def _child(code: str, **env: str) -> dict:
    """Run ``code`` (which prints one JSON line) in a fresh interpreter with ``env`` added."""
    base = {k: v for k, v in os.environ.items() if k not in cpu.PINNED_ENV and k != cpu.SWITCH}
    out = subprocess.run([sys.executable, "-c", code], env={**base, **env}, cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


PROBE = ("import json, siu_lib; from siu_lib.cpu import cpu_path_info; "
         "from siu_lib.profiles import get_profile; p = get_profile('default'); "
         "print(json.dumps({'info': cpu_path_info(), 'profile': p.name, "
         "'small_path': p.pretrain['small'].cpu_path}))")


@pytest.mark.slow
def test_a_fresh_process_is_pinned_by_importing_the_package_and_the_switch_turns_it_off():
    pinned = _child(PROBE)
    assert pinned["info"]["path"] == "avx2" and pinned["profile"] == "default"
    assert all(v["set_by"] == "siu_lib" for v in pinned["info"]["env"].values())
    native = _child(PROBE, **{cpu.SWITCH: "native"})
    assert native["info"]["path"] == "native" and native["info"]["requested"] == "native"
    assert native["profile"] == "default-native" and native["small_path"] == "native"
    assert all(v["value"] is None for v in native["info"]["env"].values())
    # another setting of one variable by the user wins, is recorded, and is not the pinned path
    user = _child(PROBE, ATEN_CPU_CAPABILITY="default")
    assert user["info"]["path"] == "native" and user["info"]["capability"] == "DEFAULT"
    assert user["info"]["env"]["ATEN_CPU_CAPABILITY"] == {"value": "default", "set_by": "environment"}
    assert user["profile"] == "default-native"
    # the pinned path runs two threads whatever OMP_NUM_THREADS says
    threads = _child(PROBE, OMP_NUM_THREADS="3")
    assert threads["info"]["threads"] == cpu.PINNED_THREADS and threads["info"]["path"] == "avx2"


def test_a_checkpoint_is_only_built_on_the_path_its_config_names(monkeypatch, tmp_path):
    from conftest import MICRO_MODEL, MICRO_PRETRAIN, MICRO_WORLD

    from siu_lib.embedded import checkpoints as embedded

    if cpu.current_path() != "avx2":
        pytest.skip("runs on the pinned path")
    monkeypatch.setattr(embedded, "checkpoint_dir", lambda key: tmp_path / key)
    cfg = replace(MICRO_PRETRAIN, cpu_path="native")
    with pytest.raises(ConfigError, match="'native' CPU path"):
        embedded.ensure_pretrained(MICRO_WORLD, MICRO_MODEL, cfg, progress=False)
    assert not list(tmp_path.iterdir())  # nothing half-built
    with pytest.raises(ConfigError, match="'arm'"):
        replace(MICRO_PRETRAIN, cpu_path="arm").validate()
