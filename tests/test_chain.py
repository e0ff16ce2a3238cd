"""The chain (``make reproduce``): which notebooks rerun and which are skipped, what a failure
reports, and what an executed notebook keeps. Toy notebooks stand in for the real ones; one
test runs them through papermill and a real kernel."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from siu_lib import chain
from siu_lib.chain import ChainFolders, clean_executed, fingerprint, rerun_reason, run_chain
from siu_lib.errors import ChainError, OverrideError
from siu_lib.profiles import get_profile


def _notebook(path: Path, cells: list[str], reads=(), writes=()) -> Path:
    first = new_code_cell('PROFILE = "default"\nSET = ""')
    first.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[first] + [new_code_cell(c) for c in cells],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                                "siu": {"reads": list(reads), "writes": list(writes), "figures": []}})
    nbformat.write(nb, path)
    return path


@pytest.fixture()
def toy(tmp_path):
    """Two notebooks: 01 writes a.csv, 02 reads a.csv and writes b.csv; a fake executor that
    records what it ran and writes the declared files as a notebook run would."""
    src = tmp_path / "notebooks"
    src.mkdir()
    nbs = [_notebook(src / "01_make.ipynb", ["x = 1"], writes=["a.csv"]),
           _notebook(src / "02_use.ipynb", ["y = 2"], reads=["a.csv"], writes=["b.csv"])]
    out_root = tmp_path / "out"
    ran: list[str] = []

    def execute(path, out, profile, log_output):
        ran.append(path.name)
        results = ChainFolders.of(profile.name, out_root).results
        results.mkdir(parents=True, exist_ok=True)
        for name in chain.notebook_io(path)["writes"]:
            (results / name).write_text(f"{name} of {profile.name}\n")
        nb = nbformat.read(path, as_version=4)
        nb.metadata["papermill"] = {"start_time": "2026-01-01T00:00:00", "duration": 1.0,
                                    "parameters": {"PROFILE": "smoke"}}
        nb.cells[1].metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00"}
        nbformat.write(nb, out)

    def run(**kw):
        ran.clear()
        steps = run_chain("smoke", kw.pop("overrides", ""), notebooks=nbs, execute=execute,
                          out_root=out_root, log=lambda _: None, **kw)
        return {s.notebook: (s.status, s.reason) for s in steps}

    return nbs, out_root, ran, run


def test_an_unchanged_chain_is_skipped_and_force_reruns_it(toy):
    nbs, out_root, ran, run = toy
    first = run()
    assert ran == ["01_make.ipynb", "02_use.ipynb"]
    assert first["01_make.ipynb"] == ("ran", "no record of a finished run")
    again = run()
    assert ran == [] and {s for s, _ in again.values()} == {"skipped"}
    run(force=True)
    assert ran == ["01_make.ipynb", "02_use.ipynb"]


def test_a_changed_notebook_reruns_only_itself(toy):
    nbs, out_root, ran, run = toy
    run()
    nb = nbformat.read(nbs[1], as_version=4)
    nb.cells[1].source = "y = 3"
    nbformat.write(nb, nbs[1])
    steps = run()
    assert ran == ["02_use.ipynb"] and steps["02_use.ipynb"] == ("ran", "the notebook's cells changed")


def test_changed_library_code_reruns_every_notebook(toy, monkeypatch):
    nbs, out_root, ran, run = toy
    run()
    monkeypatch.setattr(chain, "library_digest", lambda: "another library")
    steps = run()
    assert ran == ["01_make.ipynb", "02_use.ipynb"]
    assert steps["01_make.ipynb"][1] == "the library's code changed"


def test_a_changed_input_file_reruns_the_notebook_that_reads_it(toy):
    nbs, out_root, ran, run = toy
    run()
    (out_root / "results" / "smoke" / "a.csv").write_text("edited\n")
    steps = run()
    assert ran == ["02_use.ipynb"] and steps["02_use.ipynb"] == ("ran", "its input a.csv changed")


def test_a_missing_output_reruns_the_notebook_that_writes_it(toy):
    nbs, out_root, ran, run = toy
    run()
    (out_root / "results" / "smoke" / "b.csv").unlink()
    steps = run()
    assert ran == ["02_use.ipynb"] and "b.csv is missing" in steps["02_use.ipynb"][1]


def test_a_changed_profile_field_changes_the_fingerprint(toy):
    nbs, out_root, ran, run = toy
    profile = get_profile("smoke", "")
    results = ChainFolders.of("smoke", out_root).results
    before = {"fingerprint": fingerprint(nbs[0], profile, results)}
    assert rerun_reason(before, fingerprint(nbs[0], profile, results)) is None
    changed = replace(profile, eval_images=profile.eval_images - 1)
    assert rerun_reason(before, fingerprint(nbs[0], changed, results)) == "the profile changed"


def test_an_override_runs_in_its_own_folders_and_records_itself(toy):
    nbs, out_root, ran, run = toy
    run()
    steps = run(overrides="world_seed=11")
    assert ran == ["01_make.ipynb", "02_use.ipynb"]  # nothing of the plain profile is reused
    name = "smoke+world.world_seed=11"
    assert (out_root / "results" / name / "a.csv").read_text() == f"a.csv of {name}\n"
    assert (out_root / "results" / "smoke" / "a.csv").read_text() == "a.csv of smoke\n"
    assert (out_root / "executed" / name / "02_use.ipynb").is_file()
    record = json.loads((out_root / "results" / name / "profile.json").read_text())
    assert record["overrides"] == {"world.world_seed": "11"} and record["profile"]["name"] == name
    assert {s for s, _ in steps.values()} == {"ran"}
    with pytest.raises(OverrideError, match="no field 'world_sed'"):
        run(overrides="world_sed=11")
    assert ran == []  # a bad override stops the chain before anything runs


def test_executed_notebooks_lose_timestamps_and_failures_name_the_cell(toy):
    nbs, out_root, ran, run = toy
    run()
    executed = nbformat.read(out_root / "executed" / "smoke" / "01_make.ipynb", as_version=4)
    assert executed.metadata["papermill"] == {"parameters": {"PROFILE": "smoke"}}
    assert "execution" not in executed.cells[1].metadata

    class CellError(Exception):
        cell_index, exec_count, ename, evalue = 3, 2, "ValueError", "bad value 7"

    def failing(path, out, profile, log_output):
        ran.append(path.name)
        raise CellError()

    nb = nbformat.read(nbs[0], as_version=4)
    nb.cells[1].source = "x = 5"
    nbformat.write(nb, nbs[0])
    ran.clear()
    with pytest.raises(ChainError, match=r"01_make\.ipynb failed in cell In \[2\] \(index 3\).*ValueError: bad value 7"):
        run_chain("smoke", "", notebooks=nbs, execute=failing, out_root=out_root, log=lambda _: None)
    assert ran == ["01_make.ipynb"]  # the chain stops at the failing notebook
    assert not (out_root / "chain" / "smoke" / "01_make.json").exists()


def test_clean_executed_keeps_outputs_and_parameters():
    nb = new_notebook(cells=[new_code_cell("1")])
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=1)]
    nb.cells[0].metadata.update(papermill={"duration": 0.1}, execution={"shell.execute_reply": "t"}, tags=["x"])
    injected = new_code_cell('PROFILE = "smoke"')
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.append(injected)
    nb.metadata["papermill"] = {"input_path": "/somewhere/a.ipynb", "end_time": "t", "parameters": {"PROFILE": "smoke"}}
    kept_id = nb.cells[0].id
    clean_executed(nb)
    assert nb.cells[0].metadata == {"tags": ["x"]} and nb.cells[0].outputs[0]["data"] == {"text/plain": "1"}
    assert nb.metadata["papermill"] == {"parameters": {"PROFILE": "smoke"}}
    assert nb.cells[0].id == kept_id and nb.cells[1].id == "injected-parameters"  # no random id churns


@pytest.mark.slow
def test_papermill_runs_the_toy_chain_and_reports_the_failing_cell(tmp_path):
    src = tmp_path / "notebooks"
    src.mkdir()
    good = _notebook(src / "01_ok.ipynb", ["print(PROFILE, repr(SET))"])
    bad = _notebook(src / "02_bad.ipynb", ["z = 1", "raise ValueError(f'bad value {z}')"])
    log: list[str] = []
    with pytest.raises(ChainError) as err:
        run_chain("smoke", "world_seed=11", notebooks=[good, bad], out_root=tmp_path / "out", log=log.append,
                  progress=False)
    assert "02_bad.ipynb failed in cell In [4]" in str(err.value) and "ValueError: bad value 1" in str(err.value)
    executed = nbformat.read(tmp_path / "out" / "executed" / "smoke+world.world_seed=11" / "01_ok.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert printed == "smoke 'world.world_seed=11'\n"
    assert "start_time" not in json.dumps(executed.metadata) and "01_ok.ipynb" in "\n".join(log)
