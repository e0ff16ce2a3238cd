"""Where things live, relative to the repository root (never absolute paths in the code)."""

from __future__ import annotations

import os
from pathlib import Path

#: the repository root (the folder that holds ``siu_lib/``)
REPO_ROOT = Path(__file__).resolve().parents[1]
#: generated, git-ignored data (benchmark images, checkpoints, caches); ``SIU_DATA_DIR`` overrides
DATA_DIR = Path(os.environ.get("SIU_DATA_DIR", REPO_ROOT / "data"))
FIGURES_DIR = REPO_ROOT / "figures"


def mmubench_dir(instance: str) -> Path:
    """Folder of an MMUBench instance (``synthetic-<key>`` folders are generated)."""
    return DATA_DIR / "mmubench" / instance


def checkpoint_dir(key: str) -> Path:
    """Folder of a cached model checkpoint."""
    return DATA_DIR / "checkpoints" / key


def cache_dir(kind: str) -> Path:
    """A git-ignored cache folder."""
    return DATA_DIR / "cache" / kind


def results_dir(profile: str) -> Path:
    """``data/results/<profile>/``: aggregated CSV tables (committed for ``default``);
    ``SIU_RESULTS_DIR`` moves the parent folder (a test's chain run writes into its own)."""
    return Path(os.environ.get("SIU_RESULTS_DIR", REPO_ROOT / "data" / "results")) / profile


def repo_relative(path: str | Path) -> str:
    """``path`` as printed in outputs: relative to the repository root where it lies inside it
    (so that an executed notebook shows no absolute path of the machine that ran it)."""
    path = Path(path)
    return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else str(path)
