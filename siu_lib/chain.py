"""The chain: every numbered notebook run in order by papermill, resumable, for one profile.

``python -m siu_lib.chain --profile smoke [--set "world_seed=11"] [--force]`` (what
``make reproduce`` calls) runs ``notebooks/NN_*.ipynb`` in order and writes each executed
notebook to ``notebooks/executed/<profile name>/``. A paper-scale profile (``--profile
llava-7b``, :mod:`siu_lib.scale`) runs the same notebooks on a real LLaVA checkpoint and the
``paper`` instance, and skips those that need a synthetic world (they declare it). It stops
at the first notebook that fails, naming it and its failing cell, and prints each notebook's
wall time at the end.

**Resume.** After a notebook has run, a record of its inputs (:func:`fingerprint`) is written
to ``data/chain/<profile name>/<notebook>.json`` (git-ignored: it describes what this machine
ran). A notebook is skipped when its record matches its inputs now, its executed copy exists
and every file it declares it writes exists. Its inputs are: its own cells, the profile (every
field, after overrides), the library's code (every ``siu_lib`` source file), the versions of
the libraries that shape the numbers, the CPU code path, and the content of the result files
it declares it reads. Checkpoints and benchmark instances are cached by their own config keys
(:func:`siu_lib.embedded.ensure_pretrained`, :func:`siu_lib.bench.ensure_synthetic`) and
unlearning runs by theirs (:func:`siu_lib.runs.run_path`), so a notebook interrupted half way
reruns without redoing the work it had finished. ``--force`` reruns every notebook.

**What a notebook reads and writes** is declared in its metadata (``metadata["siu"]``, written
by ``scripts/build_notebooks.py``): ``reads`` and ``writes`` name files of the profile's
results folder, ``figures`` files of its figures folder; ``synthetic`` (true) says the notebook
needs a synthetic world (pre-training, the never-seen reference, group photos), and
``synthetic_files`` names what it writes only where there is one.

**Executed notebooks for readers.** The executed copies carry the notebook's outputs without
what churns from run to run: papermill's and the kernel's timestamps and durations are removed,
paths are relative, and progress bars are off (``SIU_PROGRESS=off``, :mod:`siu_lib.progress`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import ChainError
from .paths import DATA_DIR, REPO_ROOT, repo_relative as _shown
from .results import atomic_write_json, atomic_write_text

#: the notebooks the chain runs, in order: ``notebooks/NN_*.ipynb``
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
#: where executed notebooks go: ``notebooks/executed/<profile name>/``
EXECUTED_DIR = NOTEBOOKS_DIR / "executed"
#: cell metadata papermill and the kernel client add that changes from run to run
VOLATILE_CELL_METADATA = ("papermill", "execution")
#: papermill's tag of the cell it adds with the parameters of a run
INJECTED_TAG = "injected-parameters"
#: keys of the notebook's papermill metadata that change from run to run or hold local paths
VOLATILE_PAPERMILL_METADATA = ("start_time", "end_time", "duration", "exception", "input_path",
                               "output_path", "environment_variables")


def chain_notebooks(folder: Path = NOTEBOOKS_DIR, only: str | None = None) -> list[Path]:
    """The notebooks of the chain in run order: ``NN_*.ipynb`` of ``folder``, sorted; with
    ``only`` (comma-separated numbers or names, e.g. ``"05,10"``) just those, each kept only if
    it names exactly one notebook (:class:`ChainError` names one that does not)."""
    every = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not only:
        return every
    chosen = []
    for word in (w.strip() for w in only.split(",") if w.strip()):
        match = [p for p in every if p.name == word or p.stem == word or p.name.split("_")[0] == word.zfill(2)]
        if len(match) != 1:
            raise ChainError(f"--only {word!r} names {len(match)} notebooks; the chain's: "
                             f"{[p.name for p in every]}")
        chosen.append(match[0])
    return [p for p in every if p in chosen]


def _siu_metadata(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8")).get("metadata", {}).get("siu", {})


def notebook_io(path: Path) -> dict[str, list[str]]:
    """What a notebook declares it reads and writes (``metadata["siu"]``): ``reads`` and
    ``writes`` (file names in the profile's results folder), ``figures`` (in its figures
    folder) and ``synthetic_files`` (those of its writes and figures made only where there is a
    synthetic world); empty lists where it declares nothing."""
    meta = _siu_metadata(path)
    return {key: list(meta.get(key, [])) for key in ("reads", "writes", "figures", "synthetic_files")}


def needs_synthetic(path: Path) -> bool:
    """Whether a notebook declares that it needs a synthetic world (``metadata["siu"]
    ["synthetic"]``): the chain skips it under a paper-scale profile."""
    return bool(_siu_metadata(path).get("synthetic", False))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def notebook_digest(path: Path) -> str:
    """A hash of a notebook's cells (:func:`source_cells`: type, source and tags), not of its
    outputs or metadata."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    return _sha256(json.dumps(source_cells(nb)).encode())


def library_digest(root: Path = REPO_ROOT / "siu_lib") -> str:
    """A hash of every Python source file of the library (paths and contents)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        if "__pycache__" in p.parts:
            continue
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def file_digest(path: Path) -> str:
    """A hash of a file's content; ``"missing"`` when there is none."""
    return _sha256(path.read_bytes()) if path.is_file() else "missing"


def run_inputs(profile: Any) -> dict[str, str]:
    """The inputs every notebook of a chain run shares, as hashes: the profile (name,
    overrides and every field), the library's code, library versions and the CPU code path."""
    from .cpu import current_path
    from .results import config_digest, library_versions

    return {"profile": config_digest(asdict(profile), length=64),
            "library": library_digest(),
            "versions": config_digest(library_versions(), length=64),
            "cpu_path": current_path()}


def reads_digest(path: Path, results: Path) -> dict[str, str]:
    """The hash of each result file a notebook declares it reads (:func:`notebook_io`), in
    ``results``."""
    return {name: file_digest(results / name) for name in notebook_io(path)["reads"]}


def fingerprint(path: Path, profile: Any, results: Path,
                inputs: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything a notebook's outputs depend on, as hashes: its cells, the inputs of the run
    (:func:`run_inputs`, computed unless given), and the result files it reads
    (:func:`reads_digest`)."""
    return {"notebook": notebook_digest(path), **(inputs or run_inputs(profile)),
            "reads": reads_digest(path, results)}


#: what each fingerprint component is, for the reason a notebook reruns
_COMPONENT_NAMES = {"notebook": "the notebook's cells changed", "profile": "the profile changed",
                    "library": "the library's code changed", "versions": "library versions changed",
                    "cpu_path": "the CPU code path changed"}


def rerun_reason(stamp: dict[str, Any] | None, now: dict[str, Any]) -> str | None:
    """Why a notebook with record ``stamp`` must run again given its inputs ``now``
    (:func:`fingerprint`); ``None`` when nothing changed."""
    if stamp is None:
        return "no record of a finished run"
    old = stamp.get("fingerprint", {})
    for key, what in _COMPONENT_NAMES.items():
        if old.get(key) != now[key]:
            return what
    changed = sorted(k for k in set(old.get("reads", {})) | set(now["reads"])
                     if old.get("reads", {}).get(k) != now["reads"].get(k))
    return f"its input {', '.join(changed)} changed" if changed else None


@dataclass
class StepResult:
    """What the chain did with one notebook: ``status`` is ``ran``, ``skipped`` or ``failed``;
    ``seconds`` the wall time of this run (of the recorded run when skipped); ``reason`` why it
    ran or was skipped."""

    notebook: str
    status: str
    seconds: float
    reason: str


def clean_executed(nb: Any) -> Any:
    """An executed notebook without what changes from run to run: papermill's timestamps,
    durations and local paths (:data:`VOLATILE_PAPERMILL_METADATA`), each cell's timing
    metadata (:data:`VOLATILE_CELL_METADATA`) and the random id of papermill's
    injected-parameters cell (it becomes ``injected-parameters``). Modifies ``nb`` in place and
    returns it."""
    pm = nb.get("metadata", {}).get("papermill", {})
    for key in VOLATILE_PAPERMILL_METADATA:
        pm.pop(key, None)
    for cell in nb.get("cells", []):
        for key in VOLATILE_CELL_METADATA:
            cell.get("metadata", {}).pop(key, None)
        if INJECTED_TAG in cell.get("metadata", {}).get("tags", []):
            cell["id"] = INJECTED_TAG  # papermill draws a new random id on every run
    return nb


def absolute_paths_in_outputs(nb: Any, needles: tuple[str, ...] | None = None) -> list[int]:
    """Indices of the cells whose outputs show an absolute path of this machine (the
    repository's folder or the home folder; ``needles`` to look for others)."""
    needles = needles or (str(REPO_ROOT), str(Path.home()))
    return [k for k, cell in enumerate(nb.get("cells", []))
            if any(n in json.dumps(cell.get("outputs", [])) for n in needles)]


@dataclass(frozen=True)
class ChainFolders:
    """Where a chain run writes: results tables, figures, executed notebooks, and its own
    records (stamps and notebooks being executed)."""

    results: Path
    figures: Path
    executed: Path
    work: Path

    @classmethod
    def of(cls, profile_name: str, out_root: Path | None = None) -> "ChainFolders":
        """The folders of a profile: the project's (``data/results/<name>/``, its figures
        folder, ``notebooks/executed/<name>/``, ``data/chain/<name>/``), or the same layout
        under ``out_root`` (``results/<name>/``, ``results/<name>/figures/``,
        ``executed/<name>/``, ``chain/<name>/``)."""
        if out_root is None:
            from .paths import results_dir
            from .plots import figure_dir

            return cls(results_dir(profile_name), figure_dir(profile_name),
                       EXECUTED_DIR / profile_name, DATA_DIR / "chain" / profile_name)
        root = Path(out_root)
        return cls(root / "results" / profile_name, root / "results" / profile_name / "figures",
                   root / "executed" / profile_name, root / "chain" / profile_name)


def _read_stamp(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _missing_outputs(path: Path, results: Path, figures: Path, executed: Path, synthetic: bool = True) -> list[str]:
    io = notebook_io(path)
    skip = set() if synthetic else set(io["synthetic_files"])
    wanted = ([results / n for n in io["writes"] if n not in skip]
              + [figures / n for n in io["figures"] if n not in skip] + [executed])
    return [_shown(p) for p in wanted if not p.is_file()]


def _execute(path: Path, out: Path, profile: Any, log_output: bool) -> None:
    import papermill

    base = profile.name.split("+", 1)[0].removesuffix("-native")
    overrides = " ".join(f"{p}={v}" for p, v in profile.overrides)
    papermill.execute_notebook(str(path), str(out), parameters={"PROFILE": base, "SET": overrides},
                               kernel_name="python3", cwd=str(path.parent), progress_bar=log_output,
                               request_save_on_cell_execute=True)


def run_chain(profile_name: str | None = None, overrides: str | None = "", force: bool = False,
              notebooks: list[Path] | None = None, log: Callable[[str], None] = print,
              progress: bool = True, execute: Callable[..., None] | None = None,
              out_root: Path | None = None) -> list[StepResult]:
    """Run the chain's notebooks for a profile with ``overrides`` (an embedded or a paper-scale
    profile, :func:`siu_lib.scale.resolve_profile`; checked before anything runs), skipping each
    whose inputs are unchanged (see the module's documentation) unless ``force``, and, under a
    paper-scale profile, each that needs a synthetic world. Returns what happened to each
    notebook.

    :class:`ChainError` naming the notebook, its failing cell and the error when a notebook
    fails; the notebooks after it do not run, and its executed copy with the error is left at
    ``data/chain/<profile name>/<notebook>`` (the committed executed copy is not touched).
    ``notebooks`` defaults to :func:`chain_notebooks`; ``execute(path, out, profile,
    log_output)`` runs one notebook (default: papermill); ``out_root`` moves every folder the
    chain writes under it (:meth:`ChainFolders.of`; the notebooks themselves write where the
    profile says)."""
    import nbformat

    from .results import run_metadata
    from .scale import is_synthetic, resolve_profile

    profile = resolve_profile(profile_name, overrides)
    synthetic = is_synthetic(profile)
    os.environ["SIU_PROGRESS"] = "off"  # executed notebooks carry results, not progress bars
    execute = execute or _execute
    folders = ChainFolders.of(profile.name, out_root)
    results, figures, executed_dir, work = folders.results, folders.figures, folders.executed, folders.work
    if profile.overrides:
        atomic_write_json(results / "profile.json", {**run_metadata(asdict(profile)),
                                                      "overrides": dict(profile.overrides)})
    inputs = run_inputs(profile)  # what every notebook shares, hashed once for the run
    done: list[StepResult] = []
    for path in notebooks if notebooks is not None else chain_notebooks():
        if not synthetic and needs_synthetic(path):
            done.append(StepResult(path.name, "skipped", 0.0, "needs a synthetic world"))
            log(f"== {path.name}: skipped (needs a synthetic world; {profile.name} runs a real model)")
            continue
        executed = executed_dir / path.name
        stamp_file = work / f"{path.stem}.json"
        stamp = _read_stamp(stamp_file)
        now = fingerprint(path, profile, results, inputs)
        reason = "forced" if force else rerun_reason(stamp, now)
        missing = _missing_outputs(path, results, figures, executed, synthetic)
        if reason is None and missing:
            reason = f"{missing[0]} is missing"
        if reason is None:
            done.append(StepResult(path.name, "skipped", stamp.get("seconds", 0.0), "inputs unchanged"))
            log(f"== {path.name}: skipped (inputs unchanged; ran in {stamp.get('seconds', 0):.0f} s)")
            continue
        log(f"== {path.name}: running ({reason}), profile {profile.name}")
        work.mkdir(parents=True, exist_ok=True)
        out = work / path.name
        t0 = time.perf_counter()
        try:
            execute(path, out, profile, progress)
        except Exception as err:  # papermill's PapermillExecutionError names the cell
            seconds = time.perf_counter() - t0
            done.append(StepResult(path.name, "failed", seconds, str(err)))
            stamp_file.unlink(missing_ok=True)
            cell = getattr(err, "exec_count", None)
            where = f"cell In [{cell}] (index {err.cell_index})" if cell is not None else "a cell"
            what = f"{getattr(err, 'ename', type(err).__name__)}: {getattr(err, 'evalue', err)}"
            log(summary(done))
            raise ChainError(f"{path.name} failed in {where} after {seconds:.0f} s: {what}\n"
                             f"the executed notebook with the error: {_shown(out)}") from None
        seconds = time.perf_counter() - t0
        nb = clean_executed(nbformat.read(out, as_version=4))
        bad = absolute_paths_in_outputs(nb)
        if bad:
            log(f"   warning: cells {bad} of {path.name} show an absolute path of this machine")
        executed_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(executed, nbformat.writes(nb) + "\n")
        out.unlink(missing_ok=True)
        # the files it reads are hashed again after the run: a notebook that writes a file it
        # reads records the version it left behind
        atomic_write_json(stamp_file, {"notebook": path.name, "profile": profile.name,
                                       "fingerprint": {**now, "reads": reads_digest(path, results)},
                                       "seconds": round(seconds, 1)})
        done.append(StepResult(path.name, "ran", seconds, reason))
        log(f"   {path.name}: {seconds:.0f} s")
    log(summary(done))
    log(f"results: {_shown(results)}  figures: {_shown(figures)}  executed notebooks: {_shown(executed_dir)}")
    return done


def source_cells(nb: Any) -> list[tuple[str, str, list[str]]]:
    """A notebook's cells as (type, source, tags), without papermill's injected-parameters
    cell: what an executed copy must share with its source notebook to be current."""
    out = []
    for cell in nb["cells"]:
        tags = list(cell.get("metadata", {}).get("tags", []))
        if INJECTED_TAG in tags:
            continue
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        out.append((cell["cell_type"], src, tags))
    return out


def store_nbval_outputs(dest: Path, profile_name: str = "smoke",
                        notebooks: list[Path] | None = None) -> list[Path]:
    """Copy a profile's executed notebooks (``notebooks/executed/<profile>/``) to ``dest``:
    the stored outputs that ``make test`` has nbval compare with. :class:`ChainError` when an
    executed notebook is missing or its cells differ from its source notebook's (run the
    chain for the profile first)."""
    import nbformat

    folders = ChainFolders.of(profile_name)
    out = []
    for path in notebooks if notebooks is not None else chain_notebooks():
        executed = folders.executed / path.name
        if not executed.is_file():
            raise ChainError(f"no executed notebook {_shown(executed)}: run `make reproduce "
                             f"PROFILE={profile_name}` first")
        nb = nbformat.read(executed, as_version=4)
        if source_cells(nb) != source_cells(nbformat.read(path, as_version=4)):
            raise ChainError(f"{_shown(executed)} was executed from other cells than "
                             f"{_shown(path)}: run `make reproduce PROFILE={profile_name}` first")
        target = Path(dest) / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, nbformat.writes(nb) + "\n")
        out.append(target)
    return out


def summary(steps: list[StepResult]) -> str:
    """The wall-time table printed at the end of a chain run."""
    lines = [f"{'notebook':<34} {'status':<8} {'seconds':>8}"]
    lines += [f"{s.notebook:<34} {s.status:<8} {s.seconds:>8.1f}" for s in steps]
    ran = sum(s.seconds for s in steps if s.status != "skipped")
    lines.append(f"{'this run':<34} {'':<8} {ran:>8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line of the chain (``make reproduce``)."""
    parser = argparse.ArgumentParser(prog="python -m siu_lib.chain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default=os.environ.get("SIU_PROFILE", "default"),
                        help="default, smoke, or a paper-scale profile (llava-7b, llava-13b) "
                             "(default: $SIU_PROFILE or default)")
    parser.add_argument("--set", dest="overrides", default=os.environ.get("SIU_SET", ""),
                        help='overrides for this run, e.g. "world_seed=11 pretrain.tiny.steps=100"')
    parser.add_argument("--force", action="store_true", help="rerun every notebook")
    parser.add_argument("--only", default="",
                        help='run only these notebooks, by number or name, e.g. "05,10" (the others are '
                             'left as they are; those named still skip when their inputs are unchanged)')
    parser.add_argument("--store-nbval", metavar="DIR", type=Path,
                        help="instead of running: copy the smoke profile's executed notebooks to DIR "
                             "as the outputs nbval compares with")
    args = parser.parse_args(argv)
    from .errors import SIUError

    try:
        if args.store_nbval:
            for p in store_nbval_outputs(args.store_nbval):
                print("stored", _shown(p))
            return 0
        notebooks = chain_notebooks(only=args.only) if args.only else None
        run_chain(args.profile, args.overrides, force=args.force, notebooks=notebooks,
                  progress=sys.stderr.isatty())
    except SIUError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
