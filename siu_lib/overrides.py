"""Overrides of a run profile for one run: ``SET="world.world_seed=11 pretrain.tiny.steps=100"``.

A profile (:class:`siu_lib.profiles.Profile`) is a tree of dataclasses and dicts; its leaves
(numbers, flags, strings, tuples of them) are addressed by dotted paths, with the keys of its
dicts as path components (``pretrain.tiny.steps``). A leaf name that occurs once in the profile
may stand alone (``world_seed=11``). Values are parsed by the field's type: ``true``/``false``
for flags, ``none`` for an optional field, comma-separated items for tuples (``seeds=0,1``).

An overridden profile is a new profile named after its base and its overrides
(``smoke+world.world_seed=11``), so its results, figures and executed notebooks go to folders of
their own and never overwrite the profile's. Every error (unknown or ambiguous field, a value
of the wrong type, an out-of-range value a config rejects) is an :class:`OverrideError` raised
before anything runs.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Union

from .errors import OverrideError, SIUError

#: profile fields that cannot be overridden: the name (derived from the overrides), the sweep
#: (a tuple of settings, not a leaf), and the CPU code path (chosen by ``SIU_CPU_PATH``)
NOT_OVERRIDABLE = ("name", "overrides", "sweep", "cpu_path")
#: the longest results-folder name an override gets before it is shortened to a digest
MAX_NAME_LENGTH = 120

_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def parse_assignments(text: str | None) -> list[tuple[str, str]]:
    """``"a.b=1 c=x,y"`` -> ``[("a.b", "1"), ("c", "x,y")]``: whitespace-separated
    ``key=value`` pairs (an empty or ``None`` text gives none). :class:`OverrideError` for an
    item without ``=``, with an empty key, or a key given twice."""
    out: list[tuple[str, str]] = []
    for item in (text or "").split():
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise OverrideError(f"override {item!r} is not of the form path=value "
                                f"(e.g. world_seed=11 or pretrain.tiny.steps=100)")
        if key in (k for k, _ in out):
            raise OverrideError(f"override {key!r} is given twice in {text!r}")
        out.append((key, value))
    return out


def leaves(obj: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Every overridable leaf of a profile (or of any tree of dataclasses and dicts):
    dotted path -> (current value, type annotation; ``None`` where there is none)."""
    out: dict[str, tuple[Any, Any]] = {}
    if dataclasses.is_dataclass(obj):
        hints = typing.get_type_hints(type(obj))
        children = [(f.name, getattr(obj, f.name), hints.get(f.name)) for f in dataclasses.fields(obj)
                    if f.name not in NOT_OVERRIDABLE]
    elif isinstance(obj, dict):
        children = [(str(k), v, None) for k, v in obj.items()]
    else:
        return out
    for name, value, hint in children:
        path = f"{prefix}{name}"
        if dataclasses.is_dataclass(value) or isinstance(value, dict):
            out.update(leaves(value, path + "."))
        else:
            out[path] = (value, hint)
    return out


def resolve_path(key: str, known: dict[str, Any]) -> str:
    """The full dotted path of ``key``: itself when it is one, else the one path whose last
    component is ``key``. :class:`OverrideError` naming the candidates otherwise."""
    if key in known:
        return key
    if "." not in key:
        matches = [p for p in known if p.rsplit(".", 1)[-1] == key]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise OverrideError(f"override {key!r} is ambiguous in this profile: give one of "
                                f"{', '.join(sorted(matches))}")
    close = sorted(p for p in known if key.rsplit(".", 1)[-1] in p)[:8]
    hint = f"; similar: {', '.join(close)}" if close else ""
    raise OverrideError(f"the profile has no field {key!r}{hint}")


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) < len(typing.get_args(hint)) and len(args) == 1:
            return args[0], True
    return hint, False


def convert(raw: str, hint: Any, current: Any, path: str = "value") -> Any:
    """``raw`` parsed as the type ``hint`` (or, without one, as ``current``'s type).
    :class:`OverrideError` naming ``path`` and the value when it does not parse."""
    if hint is None:
        hint = type(current) if current is not None else str
        if isinstance(current, tuple):
            hint = tuple[type(current[0]), ...] if current else tuple[str, ...]
    hint, optional = _strip_optional(hint)
    if optional and raw.lower() in ("none", "null"):
        return None
    origin = typing.get_origin(hint)
    try:
        if origin is tuple:
            item = typing.get_args(hint)[0] if typing.get_args(hint) else str
            parts = [p.strip() for p in raw.split(",") if p.strip()]
            return tuple(convert(p, item, None, path) for p in parts)
        if origin is typing.Literal:
            options = typing.get_args(hint)
            if raw not in map(str, options):
                raise ValueError(f"one of {', '.join(map(str, options))}")
            return next(o for o in options if str(o) == raw)
        if hint is bool:
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise ValueError("true or false")
        if hint is int:
            if not re.fullmatch(r"[+-]?\d+", raw.strip()):
                raise ValueError("an integer")
            return int(raw)
        if hint is float:
            return float(raw)
        if hint is str:
            return raw
    except ValueError as err:
        expected = str(err) if str(err) and not str(err).startswith("could not") else hint_name(hint)
        raise OverrideError(f"override {path}={raw!r}: expected {expected}") from None
    raise OverrideError(f"override {path}: a field of type {hint_name(hint)} cannot be overridden")


def hint_name(hint: Any) -> str:
    """A readable name of a type annotation (``int``, ``tuple[int, ...]``)."""
    return getattr(hint, "__name__", None) if typing.get_origin(hint) is None else str(hint).replace("typing.", "")


def format_value(value: Any) -> str:
    """The canonical text of an override's value (as the results folder's name spells it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(format_value(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def _set(obj: Any, parts: list[str], value: Any) -> Any:
    head, rest = parts[0], parts[1:]
    if isinstance(obj, dict):
        return {**obj, head: _set(obj[head], rest, value) if rest else value}
    new = _set(getattr(obj, head), rest, value) if rest else value
    out = dataclasses.replace(obj, **{head: new})
    if callable(getattr(out, "validate", None)):  # configs that check themselves on demand
        out.validate()
    return out


def apply_overrides(profile: Any, text: str | None) -> tuple[Any, tuple[tuple[str, str], ...]]:
    """``profile`` with the overrides of ``text`` applied, and the overrides as canonical
    ``(full path, value text)`` pairs sorted by path (``()`` for no override).

    Each config on an override's path is rebuilt through its constructor and, where it has
    one, its ``validate`` method, so its own checks run: an out-of-range or inconsistent value
    raises there, as an :class:`OverrideError` naming the override."""
    known = leaves(profile)
    pairs = []
    for key, raw in parse_assignments(text):
        path = resolve_path(key, known)
        current, hint = known[path]
        value = convert(raw, hint, current, path)
        if path in (p for p, _, _ in pairs):
            raise OverrideError(f"override {path!r} is given twice in {text!r}")
        pairs.append((path, value, raw))
    out = profile
    for path, value, raw in pairs:
        try:
            out = _set(out, path.split("."), value)
        except (SIUError, ValueError, TypeError) as err:
            raise OverrideError(f"override {path}={raw!r} is rejected: {err}") from None
    return out, tuple(sorted((path, format_value(value)) for path, value, _ in pairs))


def override_name(base: str, overrides: tuple[tuple[str, str], ...]) -> str:
    """The name of an overridden profile: ``base+path=value+...`` (characters other than
    letters, digits and ``._,=-`` become ``_``); a name longer than :data:`MAX_NAME_LENGTH`
    becomes ``base+<digest of the overrides>``."""
    if not overrides:
        return base
    from .results import config_digest

    name = base + "".join(f"+{p}={v}" for p, v in overrides)
    name = re.sub(r"[^A-Za-z0-9._,=+-]", "_", name)
    return name if len(name) <= MAX_NAME_LENGTH else f"{base}+{config_digest(overrides)}"
