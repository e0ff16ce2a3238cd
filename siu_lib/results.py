"""The results contract: every run writes its config, seed, library versions, git commit and
machine beside its numbers, atomically (temp file + rename), so nothing half-written is left behind."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from .paths import REPO_ROOT

_LIBS = ("torch", "transformers", "peft", "tokenizers", "accelerate", "numpy", "pandas", "PIL")


def library_versions() -> dict[str, str]:
    """Versions of the libraries that determine the numbers (plus Python)."""
    import importlib

    out = {"python": platform.python_version()}
    for name in _LIBS:
        try:
            out[name] = importlib.import_module(name).__version__
        except Exception:  # pragma: no cover - a library that is not installed
            out[name] = "not installed"
    return out


#: CPU flags (``/proc/cpuinfo``) of native bfloat16 matrix arithmetic
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def _cpuinfo() -> str:
    """``/proc/cpuinfo``'s text, or ``""`` where there is none (not Linux)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU multiplies bfloat16 natively: one of :data:`NATIVE_BF16_FLAGS` is in
    the ``flags`` line of ``cpuinfo`` (default: this machine's ``/proc/cpuinfo``; ``False``
    where it cannot be read).

    Without them PyTorch falls back to a slow generic kernel for bfloat16 matrix products, and
    bf16 autocast makes CPU pre-training much slower instead of faster (``docs/decisions.md``).
    A profile's ``-native`` variant (:meth:`siu_lib.profiles.Profile.on_native_path`) turns bf16
    on only where this returns ``True``."""
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return any(f in flags for f in NATIVE_BF16_FLAGS)
    return False


def machine_info() -> dict[str, Any]:
    """The hardware that made a result: the CPU's model name, the instruction set PyTorch's
    kernels use on it (``cpu_capability``, e.g. ``AVX2`` or ``AVX512``), the code path of
    :mod:`siu_lib.cpu` (``cpu_path``: pinned or native, and the variables that chose it), the
    number of threads, and the GPU's name when one is used (else ``None``).

    Recorded because the numbers depend on it: PyTorch picks different floating-point
    kernels for different instruction sets, and a pre-training run of thousands of steps
    amplifies their rounding differences, so without the pinned path the same command, seed
    and library versions give a different checkpoint (and different tables) on another kind of
    CPU (README, "Reproducing the numbers on another machine")."""
    from .cpu import cpu_path_info
    import torch

    cpu = platform.processor() or platform.machine()
    info = _cpuinfo()
    for line in info.splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpu_path": cpu_path_info(), "native_bf16": cpu_has_native_bf16(info), "threads": torch.get_num_threads(), "gpu": gpu}


#: tracked paths whose changes do not make :func:`git_commit` dirty: the regenerated outputs
#: (result tables, benchmark tables, figures), which a run writes before its provenance
REGENERATED_PATHS = ("data/results", "data/bench", "figures")


def git_commit() -> str:
    """The repository's HEAD commit, with ``-dirty`` when tracked files other than the
    regenerated outputs (:data:`REGENERATED_PATHS`) differ from it; ``"unknown"`` outside a
    git checkout or when git fails. Untracked files are not looked at, so a clean commit
    says that every tracked file was that commit's, not that no new file was used."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."]
                               + [f":(exclude){p}" for p in REGENERATED_PATHS],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except Exception:
        return "unknown"


def config_digest(obj: Any, length: int = 12) -> str:
    """A short stable hash of a JSON-able config (dicts hashed with sorted keys): the first
    ``length`` hex digits of its SHA-256. Names cached benchmark instances, checkpoints and
    run files, so that a changed config never reuses an old file."""
    blob = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


#: the profile this process runs (set by :func:`siu_lib.profiles.get_profile`)
_PROFILE_CONTEXT: dict[str, Any] = {}


def set_profile_context(name: str, overrides: Any = ()) -> None:
    """Record the profile (its name and overrides) that this process's results belong to;
    :func:`run_metadata` writes it into every provenance block from then on."""
    _PROFILE_CONTEXT.clear()
    _PROFILE_CONTEXT.update(name=name, overrides={path: value for path, value in overrides})


def run_metadata(config: Any = None, seed: int | None = None, **extra: Any) -> dict[str, Any]:
    """The provenance block written beside every result: ``config``, ``seed``, the library
    versions, the git commit, the machine (:func:`machine_info`) and, once a profile was
    loaded in this process, the profile's name and overrides (``profile``), plus ``extra``."""
    cfg = asdict(config) if is_dataclass(config) else config
    profile = {"profile": dict(_PROFILE_CONTEXT)} if _PROFILE_CONTEXT else {}
    return {"config": cfg, "seed": seed, "versions": library_versions(),
            "git_commit": git_commit(), "machine": machine_info(), **profile, **extra}


def _jsonable(o: Any) -> Any:
    if is_dataclass(o):
        return asdict(o)
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temp file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's file is private; the result is not
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_jsonable, sort_keys=False) + "\n")


def atomic_write_csv(path: str | Path, frame: "Any") -> Path:
    """Write a pandas DataFrame as CSV (no index), atomically."""
    return atomic_write_text(path, frame.to_csv(index=False, float_format="%.4f"))
