"""The notebooks as readers and CI see them: what they declare to the chain, the executed copies
committed for readers (default profile) and stored for nbval (smoke profile), and a README
that matches the repository. ``make test`` runs nbval on the stored smoke copies; the last test
here shows that a changed output fails it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from siu_lib.claims import CLAIM_TABLES
from siu_lib.report import TABLES_MARKDOWN_READS
from siu_lib.chain import EXECUTED_DIR, INJECTED_TAG, chain_notebooks, notebook_io, source_cells
from siu_lib.profiles import PROFILES

ROOT = Path(__file__).resolve().parents[1]
NBVAL_DIR = ROOT / "tests" / "nbval"
NOTEBOOKS = chain_notebooks()
IGNORE = "nbval-ignore-output"
#: where each shipped profile's executed notebooks are committed: the default profile's for
#: readers, the smoke profile's as the outputs nbval compares with
EXECUTED = {"default": EXECUTED_DIR / "default", "smoke": NBVAL_DIR}
#: cells whose output does not depend on the machine and must be compared strictly, by notebook
#: and a line of their source: the world's names and attributes, the benchmark manifest, the
#: fine-tuning records with their masks on one collated batch, the losses on fixed tensors
MUST_COMPARE = {
    "01_build_mmubench.ipynb": ['pd.DataFrame([{"id": c.concept_id, "name": c.name, **c.attributes,',
                                "manifest = json.loads((root / MANIFEST_NAME)"],
    "03_unlearn_siu.ipynb": ["HTML(render_token_masks(processor, records))",
                             "ce, dmk = answer_ce(logits, labels), dmk_loss("],
}


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def test_the_chain_runs_every_numbered_notebook():
    assert [p.name for p in NOTEBOOKS] == ["01_build_mmubench.ipynb", "02_pretrain_embedded_mllm.ipynb",
                                           "03_unlearn_siu.ipynb", "04_run_baselines.ipynb", "05_evaluate.ipynb",
                                           "06_attacks.ipynb", "07_cases.ipynb",
                                           "08_multi_concept.ipynb", "09_frontiers.ipynb",
                                           "10_paper_claims.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_notebook_declares_every_result_it_reads_and_writes(path):
    """The chain's resume relies on ``metadata["siu"]``: every result file the source writes
    (``RESULTS / "x"`` given to a writer) or reads (``read_csv(RESULTS / "x")``) and every
    figure it saves is declared, and nothing else."""
    text = "\n".join(src for kind, src, _ in source_cells(_read(path)) if kind == "code")
    io = notebook_io(path)
    reads = set(re.findall(r'read_csv\(RESULTS / "([^"]+)"\)', text))
    written = set(re.findall(r'atomic_write_\w+\(RESULTS / "([^"]+)"', text))
    figures = set(re.findall(r'savefig\(FIGURES / "([^"]+)"', text)) | set(re.findall(r'FIGURES / "([^"]+)"', text))
    if "write_tables_markdown(RESULTS" in text:  # the library function reads the tables itself
        reads |= set(TABLES_MARKDOWN_READS) - written
    if "in CLAIM_TABLES" in text:  # every table a claim reads, those found
        reads |= set(CLAIM_TABLES)
    assert set(io["reads"]) == reads and set(io["writes"]) == written and set(io["figures"]) == figures


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_notebook_has_the_parameters_papermill_sets(path):
    nb = _read(path)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "PROFILE =" in params[0].source and "SET =" in params[0].source
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "source notebooks carry no outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_cell_nbval_does_not_compare_says_why_and_the_machine_independent_ones_are_compared(path):
    cells = [c for c in _read(path).cells if c.cell_type == "code"]
    for cell in cells:
        ignored = IGNORE in cell.metadata.get("tags", [])
        assert ignored == bool(cell.metadata.get("nbval_ignore_reason")), cell.source[:60]
    for line in MUST_COMPARE.get(path.name, []):
        matches = [c for c in cells if line in c.source]
        assert len(matches) == 1, line
        assert IGNORE not in matches[0].metadata.get("tags", []), line


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_notebook_is_executed_under_every_shipped_profile(profile):
    """Each shipped profile's executed notebooks are committed (``EXECUTED``), one per notebook,
    run from the notebook's current cells under that profile, without an error."""
    folder = EXECUTED[profile]
    for path in NOTEBOOKS:
        executed = folder / path.name
        assert executed.is_file(), f"{executed.relative_to(ROOT)} is missing: run the chain for {profile}"
        nb = _read(executed)
        assert source_cells(nb) == source_cells(_read(path)), (
            f"{executed.relative_to(ROOT)} was executed from other cells than {path.name}")
        injected = [c for c in nb.cells if INJECTED_TAG in c.metadata.get("tags", [])]
        assert len(injected) == 1 and f'PROFILE = "{profile}"' in injected[0].source
        assert 'SET = ""' in injected[0].source
        errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{executed.name}: {errors[0].get('ename')}"
        code = [c for c in nb.cells if c.cell_type == "code" and INJECTED_TAG not in c.metadata.get("tags", [])]
        assert all(c.get("execution_count") for c in code), f"{executed.name} has cells that did not run"


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_executed_notebooks_carry_no_absolute_path_timestamp_or_progress_bar(profile):
    for path in sorted(EXECUTED[profile].glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        nb = json.loads(text)
        outputs = json.dumps([{k: v for k, v in o.get("data", o).items() if not k.startswith("image/")}
                              for c in nb["cells"] for o in c.get("outputs", [])])
        assert str(ROOT) not in text and str(Path.home()) not in outputs, path.name
        assert not re.search(r"/(home|root|tmp|work|Users)/", outputs), path.name
        assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", text), f"{path.name} has a timestamp"
        assert "\\r" not in outputs and "it/s]" not in outputs, f"{path.name} has a progress bar"
        assert not any("execution" in c.get("metadata", {}) or "papermill" in c.get("metadata", {})
                       for c in nb["cells"]), path.name


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_status_table_names_files_that_exist_and_every_paper_artefact():
    text = _readme()
    section = text.split("## Where the paper's evidence stands", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| paper")]
    artefacts = [r.split("|")[1].strip() for r in rows]
    assert artefacts == ["Fig 1", "Table 1", "Table 2", "Figs 2–3", "Fig 4", "Table 3", "Table 4",
                         "Table 7", "butterfly effect", "cases"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        notebook, files = cells[2], re.findall(r"`([^`]+\.(?:csv|png|json))`", cells[3])
        if notebook.startswith("not yet"):
            assert not files, row
            continue
        assert files, row
        for f in files:
            assert (ROOT / f).is_file(), f"the status table names {f}, which does not exist"
        for number in re.findall(r"\b(\d\d)\b", notebook):
            assert any(p.name.startswith(number) for p in NOTEBOOKS), row


def test_the_readme_gallery_shows_every_committed_figure():
    text = _readme()
    shown = set(re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", text))
    tracked = subprocess.run(["git", "ls-files", "figures"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert tracked, "no committed figure"
    pngs = {f for f in tracked if f.endswith(".png")}
    assert pngs == shown
    assert all((ROOT / f).is_file() for f in shown)
    # every plot is also committed as PDF (the contact sheet is a montage of images, not a plot)
    assert {f[:-4] + ".pdf" for f in pngs if not f.endswith("contact_sheet.png")} <= set(tracked)
    assert set(tracked) - pngs - {f[:-4] + ".pdf" for f in pngs} == {"figures/tables.md"}


@pytest.mark.slow
def test_nbval_fails_when_a_stored_output_is_changed(tmp_path):
    """nbval compares notebook 01's fresh smoke outputs with the stored ones: the stored copy
    passes, and the same copy with one name changed in the world's table fails on that cell."""
    stored = NBVAL_DIR / "01_build_mmubench.ipynb"
    nb = _read(stored)
    (tmp_path / "same").mkdir()
    nbformat.write(nb, tmp_path / "same" / stored.name)
    table = next(c for c in nb.cells if MUST_COMPARE[stored.name][0] in c.source)
    plain = table.outputs[0]["data"]["text/plain"]
    name = re.search(r"c00\s+(\S+)", plain).group(1)
    for output in table.outputs:
        for kind, value in output.get("data", {}).items():
            if kind.startswith("text/"):
                output["data"][kind] = value.replace(name, name[::-1])
    (tmp_path / "changed").mkdir()
    nbformat.write(nb, tmp_path / "changed" / stored.name)
    cmd = [sys.executable, "-m", "pytest", "-q", "--nbval", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)]
    same = subprocess.run(cmd + [str(tmp_path / "same")], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert same.returncode == 0, same.stdout[-2000:]
    changed = subprocess.run(cmd + [str(tmp_path / "changed")], cwd=tmp_path, capture_output=True, text=True,
                             timeout=600)
    assert changed.returncode == 1 and "1 failed" in changed.stdout, changed.stdout[-2000:]
    assert name[::-1] in changed.stdout  # the report shows the stored (changed) value
