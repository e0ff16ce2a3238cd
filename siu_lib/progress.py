"""Progress bars on long work, and the one switch that silences them all.

Every long loop of the library (pre-training, generation, benchmark rendering, the runs of a
table) shows a ``tqdm`` bar through :func:`progress_bar`. ``SIU_PROGRESS=off`` turns every bar
off whatever the caller asked: the chain (:mod:`siu_lib.chain`) sets it for the notebooks it
executes, so that executed notebooks carry results, not progress-bar noise; it also silences the
bars ``transformers`` shows while loading and saving weights (:func:`silence_libraries`).
"""

from __future__ import annotations

import os
from typing import Any

#: values of ``SIU_PROGRESS`` that turn the bars off
OFF_VALUES = ("0", "off", "false", "no")


def progress_wanted(progress: bool = True) -> bool:
    """Whether a bar the caller asked for (``progress``) is shown: not when ``SIU_PROGRESS``
    is one of :data:`OFF_VALUES`."""
    return bool(progress) and os.environ.get("SIU_PROGRESS", "on").strip().lower() not in OFF_VALUES


def progress_bar(iterable: Any = None, progress: bool = True, **kwargs: Any) -> Any:
    """A ``tqdm.auto`` bar over ``iterable`` (or with ``total=``), shown when
    :func:`progress_wanted` says so; ``kwargs`` go to ``tqdm``."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not progress_wanted(progress), **kwargs)


def silence_libraries() -> None:
    """Turn off ``transformers``' own progress bars (loading and saving weights) when
    ``SIU_PROGRESS`` turns the bars off; called when :mod:`siu_lib.models` is imported."""
    if not progress_wanted():
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
