"""The MMUBench loader: :func:`load_benchmark` reads and checks an instance folder
(schema in :mod:`siu_lib.bench.format`), reporting every problem in one :class:`BenchmarkError`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import BenchmarkError
from ..world import Fact
from .format import (BenchConcept, Benchmark, FORMAT_VERSION, GroupPhoto, MANIFEST_NAME,
                     PROMPT_SETS, SPLITS, VQARecord, _CONCEPT_FIELDS, _ID_RE, _TOP_FIELDS, _inside,
                     _is_glob, _path_problem)


class _Problems:
    """Collects validation problems and raises them as one BenchmarkError."""

    def __init__(self, manifest: Path) -> None:
        self.manifest = manifest
        self.items: list[str] = []

    @staticmethod
    def label(where: str, key: str) -> str:
        return f"{where}.{key}" if where else key

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}" if where else message)

    def raise_if_any(self, header: str = "invalid MMUBench manifest") -> None:
        if not self.items:
            return
        shown = self.items[:25]
        more = f"\n  ... and {len(self.items) - 25} more" if len(self.items) > 25 else ""
        raise BenchmarkError(f"{self.manifest}: {header} ({len(self.items)} problem"
                             f"{'s' if len(self.items) > 1 else ''}):\n  - "
                             + "\n  - ".join(shown) + more)

    # -- typed field readers (record a problem and return None when the field is bad) ----
    def text(self, obj: dict, key: str, where: str, required: bool = True) -> str | None:
        if key not in obj:
            if required:
                self.add(self.label(where, key), "missing required field")
            return None
        v = obj[key]
        if not isinstance(v, str) or not v.strip():
            self.add(self.label(where, key), f"expected a non-empty string, got {v!r}")
            return None
        return v

    def texts(self, obj: dict, key: str, where: str, required: bool = True) -> list[str] | None:
        if key not in obj:
            if required:
                self.add(self.label(where, key), "missing required field")
            return None
        v = obj[key]
        if not isinstance(v, list) or not all(isinstance(s, str) and s.strip() for s in v):
            self.add(self.label(where, key), f"expected a list of non-empty strings, got {v!r:.80}")
            return None
        return v

    def path(self, value: Any, where: str) -> str | None:
        problem = _path_problem(value)
        if problem:
            self.add(where, problem)
            return None
        return value

    def unknown_fields(self, obj: dict, known: set[str], where: str) -> None:
        for key in sorted(set(obj) - known):
            self.add(self.label(where, key), f"unknown field (known: {', '.join(sorted(known))})")


def load_benchmark(root: str | Path, check_images: bool = True) -> Benchmark:
    """Load and validate the instance in ``root``.

    Raises one :class:`BenchmarkError` naming the file and the field for: a missing manifest,
    invalid JSON, an unknown ``format_version``, a missing or mistyped required field, a
    duplicate concept id or name, an unknown split or inconsistent splits, a concept without
    a forget image, a path that escapes the instance folder and, with ``check_images``, any
    missing or unreadable image (listing the concepts without images). ``check_images=False``
    loads an instance whose images are not there yet (the ``paper`` instance); then
    :meth:`Benchmark.missing_images` says what to supply.
    """
    root = Path(root)
    manifest = root / MANIFEST_NAME
    if not manifest.is_file():
        raise BenchmarkError(f"{manifest}: missing manifest; {root} is not an MMUBench instance"
                             + ("" if root.is_dir() else " (the folder does not exist)"))
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise BenchmarkError(f"{manifest}: invalid JSON at line {e.lineno}, column {e.colno}: "
                             f"{e.msg}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BenchmarkError(f"{manifest}: cannot read the manifest ({e})") from None
    bench = _parse(root, manifest, data)
    if check_images:
        _check_images(bench)
    return bench


def _parse(root: Path, manifest: Path, data: Any) -> Benchmark:
    pb = _Problems(manifest)
    if not isinstance(data, dict):
        raise BenchmarkError(f"{manifest}: the manifest must be a JSON object, got "
                             f"{type(data).__name__}")
    if "format_version" not in data:
        raise BenchmarkError(f"{manifest}: format_version: missing required field")
    version = data["format_version"]
    if type(version) is not int or version != FORMAT_VERSION:
        raise BenchmarkError(f"{manifest}: format_version: unknown format_version {version!r}; "
                             f"this code reads format_version {FORMAT_VERSION}")
    pb.unknown_fields(data, _TOP_FIELDS, "")
    name = pb.text(data, "name", "")
    description = data.get("description", "")
    if not isinstance(description, str):
        pb.add("description", f"expected a string, got {description!r}")
    created_by = data.get("created_by", {})
    if not isinstance(created_by, dict):
        pb.add("created_by", f"expected an object, got {created_by!r}")
        created_by = {}

    concepts: list[BenchConcept] = []
    declared: set[str] = set()
    raw_concepts = data.get("concepts")
    if raw_concepts is None:
        pb.add("concepts", "missing required field")
    elif not isinstance(raw_concepts, list) or not raw_concepts:
        pb.add("concepts", f"expected a non-empty list of concepts, got {raw_concepts!r:.80}")
    else:
        ids: dict[str, int] = {}
        names: dict[str, int] = {}
        for i, raw in enumerate(raw_concepts):
            if isinstance(raw, dict) and isinstance(raw.get("concept_id"), str):
                declared.add(raw["concept_id"])  # a broken concept is still a known id
            c = _parse_concept(pb, raw, i)
            if c is None:
                continue
            if c.concept_id in ids:
                pb.add(f"concepts[{i}].concept_id", f"duplicate concept id {c.concept_id!r} "
                       f"(also concepts[{ids[c.concept_id]}])")
                continue
            if c.name.lower() in names:
                pb.add(f"concepts[{i}].name", f"duplicate concept name {c.name!r} "
                       f"(also concepts[{names[c.name.lower()]}])")
                continue
            ids[c.concept_id] = i
            names[c.name.lower()] = i
            concepts.append(c)
    known = declared
    group_photos: list[GroupPhoto] = []
    for i, raw in enumerate(_list_field(pb, data, "group_photos")):
        where = f"group_photos[{i}]"
        if not isinstance(raw, dict):
            pb.add(where, f"expected an object, got {raw!r}")
            continue
        pb.unknown_fields(raw, {"image", "left", "right"}, where)
        image, left, right = (pb.text(raw, k, where) for k in ("image", "left", "right"))
        image = image and pb.path(image, f"{where}.image")
        for key, cid in (("left", left), ("right", right)):
            if cid is not None and cid not in known:
                pb.add(f"{where}.{key}", f"unknown concept id {cid!r}")
        if image and left in known and right in known:
            if left == right:
                pb.add(where, f"left and right are the same concept {left!r}")
            group_photos.append(GroupPhoto(image, left, right))

    general_vqa: list[VQARecord] = []
    vqa_fields = {"image", "concept_id", "question", "answer", "task", "partner_id"}
    for i, raw in enumerate(_list_field(pb, data, "general_vqa")):
        where = f"general_vqa[{i}]"
        if not isinstance(raw, dict):
            pb.add(where, f"expected an object, got {raw!r}")
            continue
        pb.unknown_fields(raw, vqa_fields, where)
        vals = {k: pb.text(raw, k, where, required=k != "partner_id") for k in vqa_fields}
        vals["image"] = vals["image"] and pb.path(vals["image"], f"{where}.image")
        for key in ("concept_id", "partner_id"):
            if vals[key] is not None and vals[key] not in known:
                pb.add(f"{where}.{key}", f"unknown concept id {vals[key]!r}")
        if all(vals[k] is not None for k in vqa_fields - {"partner_id"}):
            general_vqa.append(VQARecord(**vals))

    # an image is in one role only: a concept's forget image, or a generality image
    roles: dict[str, str] = {}
    for i, c in enumerate(concepts):
        label = f"concepts[{i}] ({c.concept_id})"
        for where, path in [(f"{label}.forget_image", c.forget_image)] + [
                (f"{label}.generality_images", p) for p in c.generality_images]:
            if _is_glob(path):
                continue
            if path in roles:
                pb.add(where, f"image {path!r} is listed twice (also {roles[path]})")
            roles[path] = where

    splits = None
    if "splits" in data:
        splits = _parse_splits(pb, data["splits"], concepts, group_photos, general_vqa,
                               consistency=not pb.items)
    pb.raise_if_any()
    return Benchmark(root=root, name=name or "", description=description or "",
                     created_by=created_by, concepts=concepts, group_photos=group_photos,
                     general_vqa=general_vqa, manifest_splits=splits, format_version=version)


def _list_field(pb: _Problems, data: dict, key: str) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        pb.add(key, f"expected a list, got {value!r:.80}")
        return []
    return value


def _parse_concept(pb: _Problems, raw: Any, i: int) -> BenchConcept | None:
    where = f"concepts[{i}]"
    if not isinstance(raw, dict):
        pb.add(where, f"expected an object, got {raw!r:.80}")
        return None
    n_before = len(pb.items)
    cid = pb.text(raw, "concept_id", where)
    if cid is not None:
        if not _ID_RE.match(cid):
            pb.add(f"{where}.concept_id", f"{cid!r} is not a valid id (letters, digits, _ . -)")
        where = f"concepts[{i}] ({cid})"
    pb.unknown_fields(raw, _CONCEPT_FIELDS, where)
    name = pb.text(raw, "name", where)
    kind = pb.text(raw, "kind", where)
    forget = raw.get("forget_image")
    if forget in (None, "", []):
        pb.add(f"{where}.forget_image", "concept without a forget image (every concept "
               "needs exactly one forget image)")
    else:
        forget = pb.path(forget, f"{where}.forget_image")
    generality = pb.texts(raw, "generality_images", where)
    for k, p in enumerate(generality or []):
        pb.path(p, f"{where}.generality_images[{k}]")
    probe = pb.text(raw, "probe_question", where)
    special = pb.texts(raw, "special_tokens", where)

    facts: list[Fact] = []
    raw_facts = raw.get("facts", [])
    if not isinstance(raw_facts, list):
        pb.add(f"{where}.facts", f"expected a list of facts, got {raw_facts!r:.80}")
        raw_facts = []
    for k, f in enumerate(raw_facts):
        fw = f"{where}.facts[{k}]"
        if not isinstance(f, dict):
            pb.add(fw, f"expected an object {{key, question, answer, value}}, got {f!r:.80}")
            continue
        pb.unknown_fields(f, {"key", "question", "answer", "value"}, fw)
        vals = [pb.text(f, key, fw) for key in ("key", "question", "answer", "value")]
        if all(v is not None for v in vals):
            facts.append(Fact(*vals))

    attributes = raw.get("attributes", {})
    if not isinstance(attributes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()):
        pb.add(f"{where}.attributes", f"expected an object of strings, got {attributes!r:.80}")
        attributes = {}

    prompts: dict[str, list] = {}
    raw_prompts = raw.get("prompts", {})
    if not isinstance(raw_prompts, dict):
        pb.add(f"{where}.prompts", f"expected an object, got {raw_prompts!r:.80}")
        raw_prompts = {}
    for key in sorted(set(raw_prompts) - set(PROMPT_SETS)):
        pb.add(f"{where}.prompts.{key}", f"unknown prompt set (known: {', '.join(PROMPT_SETS)})")
    for key in PROMPT_SETS:
        if key not in raw_prompts:
            continue
        value = raw_prompts[key]
        pw = f"{where}.prompts.{key}"
        if key == "multihop":
            ok = isinstance(value, list) and all(
                isinstance(q, dict) and set(q) == {"question", "answer"}
                and all(isinstance(s, str) and s.strip() for s in q.values()) for q in value)
            expected = "a list of {question, answer} objects"
        else:
            ok = isinstance(value, list) and all(isinstance(s, str) and s.strip() for s in value)
            expected = "a list of non-empty strings"
        if ok:
            prompts[key] = value
        else:
            pb.add(pw, f"expected {expected}, got {value!r:.80}")

    if len(pb.items) > n_before:
        return None
    return BenchConcept(cid, name, kind, forget, list(generality or []), probe, list(special),
                        facts, dict(attributes), prompts)


def _parse_splits(pb: _Problems, raw: Any, concepts: list[BenchConcept],
                  group_photos: list[GroupPhoto], general_vqa: list[VQARecord],
                  consistency: bool = True) -> dict[str, list[str]] | None:
    """Check the manifest's splits: known names, safe paths and (when the rest of the
    manifest is valid, so that a broken concept does not cascade) agreement with the fields
    and disjointness."""
    if not isinstance(raw, dict):
        pb.add("splits", f"expected an object {{split: [paths]}}, got {raw!r:.80}")
        return None
    splits: dict[str, list[str]] = {}
    for key, paths in raw.items():
        if key not in SPLITS:
            pb.add(f"splits.{key}", f"unknown split {key!r} (known: {', '.join(SPLITS)})")
            continue
        if not isinstance(paths, list):
            pb.add(f"splits.{key}", f"expected a list of paths, got {paths!r:.80}")
            continue
        good = [p for k, p in enumerate(paths) if pb.path(p, f"splits.{key}[{k}]")]
        if len(good) == len(paths):
            if len(set(good)) != len(good):
                pb.add(f"splits.{key}", "an image is listed twice")
            splits[key] = good
    if not consistency:
        return splits
    expected = {
        "forget": {c.forget_image for c in concepts},
        "generality": {p for c in concepts for p in c.generality_images},
        "specificity": {v.image for v in general_vqa} | {g.image for g in group_photos},
    }
    for key, paths in splits.items():
        got = set(paths)
        if got != expected[key]:
            extra, lacking = sorted(got - expected[key]), sorted(expected[key] - got)
            pb.add(f"splits.{key}", "does not match the concepts' fields"
                   + (f"; not referenced elsewhere: {extra[:5]}" if extra else "")
                   + (f"; missing from the split: {lacking[:5]}" if lacking else ""))
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            both = sorted(set(splits.get(a, [])) & set(splits.get(b, [])))
            if both:
                pb.add("splits", f"splits {a!r} and {b!r} overlap in {len(both)} image(s), "
                       f"e.g. {both[:3]}")
    return splits


def _check_images(bench: Benchmark) -> None:
    """Every image exists, lies inside the instance and is readable by PIL."""
    pb = _Problems(bench.manifest_path)
    missing = bench.missing_images()
    if missing:
        for cid, paths in missing.items():
            pb.add(cid, "missing " + ", ".join(
                str(bench.root / p) + (" (no matching .png/.jpg/.jpeg file)" if _is_glob(p) else "")
                for p in paths[:4])
                   + (f" and {len(paths) - 4} more" if len(paths) > 4 else ""))
        pb.raise_if_any(f"{len(missing)} concept(s) without their images: "
                        f"{', '.join(missing)}; supply them (see the manifest's description) "
                        f"or load with check_images=False")
    files: list[tuple[str, str]] = []
    for i, c in enumerate(bench.concepts):
        label = f"concepts[{i}] ({c.concept_id})"
        try:
            files.append((bench.forget_image_path(c), f"{label}.forget_image"))
        except BenchmarkError as e:
            pb.add(f"{label}.forget_image", str(e))
        files += [(p, f"{label}.generality_images") for p in bench.generality_image_paths(c)]
    files += [(g.image, "group_photos") for g in bench.group_photos]
    files += [(v.image, "general_vqa") for v in bench.general_vqa]
    seen: set[str] = set()
    for rel, where in files:
        if rel in seen:
            continue
        seen.add(rel)
        path = bench.root / rel
        if not _inside(bench.root, path):
            pb.add(where, f"{path}: resolves outside the instance folder")
            continue
        try:
            with Image.open(path) as im:
                im.verify()
        except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, ...
            pb.add(where, f"{path}: unreadable or corrupt image ({type(e).__name__}: {e})")
    pb.raise_if_any("bad images")
