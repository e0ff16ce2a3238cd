"""The project's exceptions.

Every error a user can cause (a bad path, a malformed manifest, an unknown method or concept,
a model without an image processor) is raised as a subclass of :class:`SIUError`, with the
offending value in the message. Catch ``SIUError`` to handle all of them.
"""

from __future__ import annotations


class SIUError(Exception):
    """Base class of every exception this package raises on purpose."""


class BenchmarkError(SIUError):
    """An MMUBench instance (manifest or images) is missing, malformed or inconsistent."""


class ModelLoadError(SIUError):
    """A checkpoint cannot be loaded as an image-text (LLaVA-family) model."""


class UnknownNameError(SIUError, KeyError):
    """A name (method, metric, concept, profile, model size) is not registered."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class ConfigError(SIUError, ValueError):
    """A configuration value is out of range or inconsistent."""


class DataFormatError(SIUError):
    """A fine-tuning or prompt-set file does not follow the expected format."""


class OverrideError(ConfigError):
    """A profile override (``SET="path=value ..."``) names no field of the profile, names one
    ambiguously, or gives a value of the wrong type."""


class ChainError(SIUError):
    """A notebook of the chain failed, or the chain was asked to run something it does not have."""
