"""Tests of siu_lib.bench: byte-identical synthetic instances, disjoint splits, the load round
trip, one clear BenchmarkError per kind of broken instance, atomic writing, the cache, and the
committed image-less ``paper`` instance."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from siu_lib.bench import synthetic as synthetic_mod
from siu_lib import paths
from siu_lib.bench import (
    FORMAT_VERSION,
    PAPER_CONCEPTS,
    SPLITS,
    Benchmark,
    ensure_synthetic,
    load_benchmark,
    load_paper,
    paper_manifest_path,
    synthetic_key,
    write_paper_manifest,
    write_synthetic,
)
from siu_lib.errors import BenchmarkError, UnknownNameError
from siu_lib.results import config_digest
from siu_lib.world import World, WorldConfig

CFG = WorldConfig(n_concepts=4, images_per_concept=6, image_size=32)


@pytest.fixture(scope="module")
def world() -> World:
    return World(CFG)


@pytest.fixture(scope="module")
def instance(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One synthetic instance, written once; tests that break it work on a copy."""
    return write_synthetic(world, tmp_path_factory.mktemp("bench") / "synthetic", progress=False)


@pytest.fixture
def copy(instance: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(instance, tmp_path / "copy"))


def all_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def edit_manifest(root: Path, edit: Callable[[dict], None]) -> Path:
    manifest = root / "manifest.json"
    data = json.loads(manifest.read_text())
    edit(data)
    manifest.write_text(json.dumps(data))
    return manifest


# ----------------------------------------------------------------------------- writing

def test_same_world_gives_byte_identical_instances(instance: Path, tmp_path: Path) -> None:
    again = write_synthetic(World(CFG), tmp_path / "again", progress=False)
    first, second = all_bytes(instance), all_bytes(again)
    assert first.keys() == second.keys()
    assert first == second
    n_images = CFG.n_concepts * (CFG.images_per_concept + synthetic_mod.SPECIFICITY_IMAGES_PER_CONCEPT
                                 + CFG.group_photos_per_pair)
    assert len(first) == n_images + 1
    manifest = json.loads(first["manifest.json"])
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["created_by"]["world_config"]["world_seed"] == CFG.world_seed


def test_another_seed_gives_other_names(instance: Path, tmp_path: Path) -> None:
    other_cfg = WorldConfig(world_seed=7, n_concepts=4, images_per_concept=6, image_size=32)
    other = load_benchmark(write_synthetic(World(other_cfg), tmp_path / "other", progress=False))
    names = {c.name for c in load_benchmark(instance).concepts}
    assert names.isdisjoint({c.name for c in other.concepts})
    assert synthetic_key(other_cfg) != synthetic_key(CFG)


def test_splits_are_disjoint_and_complete(instance: Path) -> None:
    b = load_benchmark(instance)
    splits = {name: set(b.split(name)) for name in SPLITS}
    assert splits["forget"].isdisjoint(splits["generality"])
    assert splits["forget"].isdisjoint(splits["specificity"])
    assert splits["generality"].isdisjoint(splits["specificity"])
    assert splits["forget"] == {f"images/{c.concept_id}/forget.png" for c in b.concepts}
    assert len(splits["generality"]) == CFG.n_concepts * (CFG.images_per_concept - 1)
    assert {g.image for g in b.group_photos} <= splits["specificity"]
    assert b.derived_splits() == b.splits
    with pytest.raises(UnknownNameError, match="holdout"):
        b.split("holdout")


def test_load_round_trip(world: World, instance: Path) -> None:
    b = load_benchmark(instance)
    assert isinstance(b, Benchmark) and b.name == "synthetic" and b.root == instance
    assert b.concept_ids == [c.concept_id for c in world.concepts]
    for wc in world.concepts:
        bc = b.concept(wc.concept_id)
        assert (bc.name, bc.kind, bc.attributes) == (wc.name, wc.kind, wc.attributes)
        assert bc.facts == wc.facts
        assert bc.special_tokens == wc.special_tokens and bc.probe_question == wc.probe_question
        assert bc.prompts["open"] == world.open_prompts(wc)
        assert bc.prompts["yesno"] == world.yesno_prompts(wc)
        assert bc.prompts["multilingual"] == world.multilingual_prompts(wc)
        multihop = [(q["question"], q["answer"]) for q in bc.prompts["multihop"]]
        assert multihop == world.multihop_prompts(wc)
        assert bc.prompts["mia"] == world.mia_prompts(wc)
    c = world.concepts[1]
    forget = b.forget_image(c.concept_id)
    assert np.array_equal(np.asarray(forget), np.asarray(world.forget_image(c)))
    generality = b.generality_images(c.concept_id)
    assert len(generality) == CFG.images_per_concept - 1
    assert np.array_equal(np.asarray(generality[2]), np.asarray(world.render(c, 3)))
    assert b.concept(c.name.lower()) is b.concept(c.concept_id)
    assert b.missing_images() == {}
    # group photos and general VQA
    assert [(g.left, g.right) for g in b.group_photos[:: CFG.group_photos_per_pair]] == [
        (x.concept_id, world.partner(x).concept_id) for x in world.concepts]
    counting = [v for v in b.general_vqa if v.image.startswith("images/groups/")]
    assert len(counting) == len(b.group_photos) and {v.answer for v in counting} == {"two"}
    single = [v for v in b.general_vqa if v.partner_id is None]
    assert {v.task for v in single} == {"hair_color", "clothing", "glasses", "counting"}
    assert b.load_image(b.group_photos[0].image).size == (CFG.image_size, CFG.image_size)


def test_unknown_concept_names_the_value_and_the_known_ids(instance: Path) -> None:
    b = load_benchmark(instance, check_images=False)
    with pytest.raises(UnknownNameError, match=r"'Nobody'.*c00.*c03"):
        b.concept("Nobody")


def test_a_complete_instance_is_a_cache(world: World, instance: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    before = {p: p.stat().st_mtime_ns for p in instance.rglob("*")}

    def fail(*_args: object) -> None:
        raise AssertionError("a complete instance must not be rewritten")

    monkeypatch.setattr(synthetic_mod, "_save_image", fail)
    assert write_synthetic(world, instance, progress=False) == instance
    assert {p: p.stat().st_mtime_ns for p in instance.rglob("*")} == before


def test_an_incomplete_instance_is_rebuilt_and_a_foreign_folder_refused(
        world: World, copy: Path, tmp_path: Path) -> None:
    (copy / "images" / "c02" / "g003.png").unlink()
    write_synthetic(world, copy, progress=False)
    assert load_benchmark(copy).missing_images() == {}
    other = World(WorldConfig(world_seed=3, n_concepts=4, images_per_concept=6, image_size=32))
    with pytest.raises(BenchmarkError, match="not the synthetic MMUBench instance"):
        write_synthetic(other, copy, progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(BenchmarkError, match="foreign"):
        write_synthetic(world, foreign, progress=False)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_a_failed_write_leaves_nothing(world: World, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    saved = []
    real_save = synthetic_mod._save_image

    def save_then_fail(image: Image.Image, path: Path) -> None:
        if len(saved) == 10:
            raise RuntimeError("disk full")
        saved.append(path)
        real_save(image, path)

    monkeypatch.setattr(synthetic_mod, "_save_image", save_then_fail)
    parent = tmp_path / "instances"
    with pytest.raises(RuntimeError, match="disk full"):
        write_synthetic(world, parent / "synthetic", progress=False)
    assert len(saved) == 10
    assert not (parent / "synthetic").exists()
    assert list(parent.iterdir()) == []


def test_ensure_synthetic_builds_once_under_the_key(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "DATA_DIR", tmp_path)
    root = ensure_synthetic(CFG, progress=False)
    assert root == tmp_path / "mmubench" / f"synthetic-{synthetic_key(CFG)}"
    assert len(synthetic_key(CFG)) == 12
    assert synthetic_key(CFG) == synthetic_key(WorldConfig(**vars(CFG)))
    assert ensure_synthetic(CFG, progress=False) == root
    assert load_benchmark(root).created_by["world_key"] == synthetic_key(CFG)


# ----------------------------------------------------------------------------- validation

def _del(path: str) -> Callable[[Path], None]:
    return lambda root: (root / path).unlink()


def _garbage(path: str) -> Callable[[Path], None]:
    return lambda root: (root / path).write_bytes(b"\x89PNG this is not an image")


def _set(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    return lambda root: edit_manifest(root, edit)


def _dup_concept(m: dict) -> None:
    m["concepts"].append(dict(m["concepts"][0]))


def _dup_name(m: dict) -> None:
    m["concepts"][2]["name"] = m["concepts"][0]["name"].upper()


def _overlap(m: dict) -> None:
    m["splits"]["generality"].append(m["concepts"][0]["forget_image"])


BROKEN = {
    # case: (how to break the copy, file named in the message, substrings of the message)
    "missing manifest": (_del("manifest.json"), "manifest.json", ["missing manifest"]),
    "invalid json": (lambda r: (r / "manifest.json").write_text("{not json"), "manifest.json",
                     ["invalid JSON", "line 1"]),
    "format_version 99": (_set(lambda m: m.update(format_version=99)), "manifest.json",
                          ["format_version", "99"]),
    "missing format_version": (_set(lambda m: m.pop("format_version")), "manifest.json",
                               ["format_version", "missing required field"]),
    "missing required field": (_set(lambda m: m["concepts"][1].pop("probe_question")),
                               "manifest.json", ["concepts[1] (c01).probe_question",
                                                 "missing required field", "(1 problem)"]),
    "missing concepts": (_set(lambda m: m.pop("concepts")), "manifest.json",
                         ["concepts", "missing required field"]),
    "duplicate concept id": (_set(_dup_concept), "manifest.json",
                             ["concepts[4].concept_id", "duplicate concept id 'c00'"]),
    "duplicate concept name": (_set(_dup_name), "manifest.json",
                               ["concepts[2].name", "duplicate concept name"]),
    "unknown split": (_set(lambda m: m["splits"].update(holdout=[])), "manifest.json",
                      ["splits.holdout", "unknown split 'holdout'"]),
    "overlapping splits": (_set(_overlap), "manifest.json",
                           ["'forget' and 'generality' overlap", "images/c00/forget.png"]),
    "no forget image": (_set(lambda m: m["concepts"][3].pop("forget_image")), "manifest.json",
                        ["concepts[3] (c03).forget_image", "without a forget image",
                         "(1 problem)"]),
    "empty forget image": (_set(lambda m: m["concepts"][3].update(forget_image="")),
                           "manifest.json", ["c03", "forget_image", "without a forget image"]),
    "path escapes": (_set(lambda m: m["concepts"][0].update(generality_images=["../x.png"])),
                     "manifest.json", ["concepts[0] (c00).generality_images[0]", "'../x.png'",
                                       "escapes", "(1 problem)"]),
    "absolute path": (_set(lambda m: m["group_photos"][0].update(image="/etc/passwd")),
                      "manifest.json", ["group_photos[0].image", "'/etc/passwd'", "escapes"]),
    "unknown group concept": (_set(lambda m: m["group_photos"][0].update(right="c42")),
                              "manifest.json", ["group_photos[0].right", "'c42'"]),
    "typo field": (_set(lambda m: m["concepts"][0].update(probe_qestion="?")), "manifest.json",
                   ["concepts[0] (c00).probe_qestion", "unknown field"]),
    "unknown prompt set": (_set(lambda m: m["concepts"][0]["prompts"].update(riddles=["?"])),
                           "manifest.json", ["prompts.riddles", "unknown prompt set"]),
    "deleted image": (_del("images/c02/g003.png"), "images/c02/g003.png", ["c02", "missing"]),
    "deleted forget image": (_del("images/c01/forget.png"), "images/c01/forget.png",
                             ["c01", "without their images"]),
    "corrupt image": (_garbage("images/c01/g002.png"), "images/c01/g002.png",
                      ["concepts[1] (c01).generality_images", "corrupt"]),
    "corrupt group photo": (_garbage("images/groups/c00_c01_0.png"), "images/groups/c00_c01_0.png",
                            ["group_photos", "corrupt"]),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_every_broken_instance_raises_one_clear_benchmark_error(copy: Path, case: str) -> None:
    breaker, file, substrings = BROKEN[case]
    breaker(copy)
    with pytest.raises(BenchmarkError) as info:
        load_benchmark(copy)
    message = str(info.value)
    assert str(copy / file) in message
    for s in substrings:
        assert s in message, (s, message)


def test_check_images_false_skips_only_the_image_checks(copy: Path) -> None:
    (copy / "images" / "c02" / "g003.png").unlink()
    _garbage("images/c01/g002.png")(copy)
    b = load_benchmark(copy, check_images=False)
    assert b.missing_images() == {"c02": ["images/c02/g003.png"]}
    with pytest.raises(BenchmarkError, match="g003.png: image file missing"):
        b.load_image("images/c02/g003.png")
    with pytest.raises(BenchmarkError, match="g002.png: unreadable image"):
        b.load_image("images/c01/g002.png")
    with pytest.raises(BenchmarkError, match="escapes"):
        b.load_image("../manifest.json")


def test_a_symlink_out_of_the_instance_is_refused(copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    shutil.copy(copy / "images" / "c00" / "g001.png", outside)
    (copy / "images" / "c00" / "g001.png").unlink()
    (copy / "images" / "c00" / "g001.png").symlink_to(outside)
    with pytest.raises(BenchmarkError, match="outside the instance folder"):
        load_benchmark(copy)


# ----------------------------------------------------------------------------- paper

def test_paper_manifest_lists_the_20_concepts_of_the_table() -> None:
    b = load_paper()
    assert b.name == "paper" and len(b.concepts) == 20 == len(PAPER_CONCEPTS)
    assert [c.name for c in b.concepts][:3] == ["Aberystwyth Castle", "Buzzcut", "Chariot"]
    assert [c.name for c in b.concepts][-3:] == ["van Gogh", "Picasso", "Doodle"]
    fb = b.concept("facebook")
    assert fb.kind == "logo"
    assert fb.special_tokens == ["Facebook", "facebook", "white", "blue", "Mark Zuckerberg"]
    assert fb.probe_question == ("Which company logo is in this picture? Who found the company "
                                 "and describe it")
    elon = b.concept("Elon Musk")
    assert elon.concept_id == "elon_musk"
    assert elon.special_tokens == ["Elon Musk", "Musk", "Elon", "Square Face", "Light Brown Hair"]
    assert elon.probe_question == "Who is the main character in this image, describe him"
    castle = b.concept("aberystwyth_castle")
    assert (castle.kind, castle.probe_question) == (
        "place", "Who is in this picture and describe the main features?")
    assert castle.special_tokens == ["castle", "medieval", "stone walls", "ruined structure"]
    assert b.concept("doodle").probe_question == "What is the main style of this picture?"
    assert b.concept("schnauzer").kind == "dog breed"
    assert b.concept("van_gogh").special_tokens == ["van Gogh", "Starry Night", "Vivid Colors",
                                                    "Impressionism"]
    for c in b.concepts:
        assert c.prompts["open"][0] == c.probe_question
        assert all(c.name in q for q in c.prompts["yesno"])
        assert not any(c.name.lower() in q.lower() for q in c.prompts["open"])
    assert "forget.png" in b.description and "images/<concept_id>/" in b.description


def test_paper_manifest_is_regenerated_identically(tmp_path: Path) -> None:
    written = write_paper_manifest(tmp_path)
    assert written.read_bytes() == paper_manifest_path().read_bytes()


def test_committed_paper_instance_reports_every_concept_without_images() -> None:
    b = load_paper(check_images=False)
    missing = b.missing_images()
    assert list(missing) == [c.concept_id for c in PAPER_CONCEPTS]
    assert missing["facebook"] == ["images/facebook/forget.*"]
    with pytest.raises(BenchmarkError) as info:
        load_paper(check_images=True)
    message = str(info.value)
    assert "20 concept(s) without their images" in message
    assert all(c.concept_id in message for c in PAPER_CONCEPTS)


def test_user_supplied_paper_images(tmp_path: Path) -> None:
    shutil.copy(paper_manifest_path(), tmp_path / "manifest.json")
    folder = tmp_path / "images" / "facebook"
    folder.mkdir(parents=True)
    Image.new("RGB", (40, 30), (24, 119, 242)).save(folder / "forget.jpg")
    b = load_benchmark(tmp_path, check_images=False)
    missing = b.missing_images()
    assert len(missing) == 19 and "facebook" not in missing
    assert b.forget_image_path("facebook") == "images/facebook/forget.jpg"
    assert b.forget_image("facebook").size == (40, 30)
    assert b.generality_image_paths("facebook") == []
    Image.new("RGB", (8, 8)).save(folder / "g01.png")
    (folder / "notes.txt").write_text("not an image")
    assert b.generality_image_paths("facebook") == ["images/facebook/g01.png"]
    assert b.splits["forget"] == ["images/facebook/forget.jpg"]
    assert b.splits["generality"] == ["images/facebook/g01.png"]
    Image.new("RGB", (8, 8)).save(folder / "forget.png")
    with pytest.raises(BenchmarkError, match="several forget images"):
        b.forget_image_path("facebook")


def test_config_digest_is_sha256_of_sorted_json():
    """The one hash behind instance, checkpoint and run-file names: key order does not matter,
    any value does, and the digest is the leading hex digits of SHA-256 of the sorted JSON."""
    a = {"world": {"seed": 0, "n": 20}, "revision": 6}
    assert config_digest(a) == config_digest({"revision": 6, "world": {"n": 20, "seed": 0}})
    assert config_digest(a) != config_digest({**a, "revision": 7})
    by_hand = hashlib.sha256(b'{"revision": 6, "world": {"n": 20, "seed": 0}}').hexdigest()
    assert config_digest(a) == by_hand[:12] and config_digest(a, length=8) == by_hand[:8]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_commit_is_dirty_for_code_changes_only(tmp_path: Path, monkeypatch) -> None:
    """A run writes its result tables before its provenance: those regenerated outputs must
    not mark the commit dirty, a changed source file must."""
    import subprocess

    from siu_lib import results

    # a scratch repository that no global git setting (signing, hooks, a GIT_DIR) reaches
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.delenv("GIT_WORK_TREE", raising=False)
    repo = tmp_path / "repo"
    (repo / "siu_lib").mkdir(parents=True)

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false",
                               *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()

    (repo / "siu_lib" / "code.py").write_text("x = 1\n")
    for p in results.REGENERATED_PATHS:
        (repo / p).mkdir(parents=True)
        (repo / p / "table.csv").write_text("a\n1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "init")
    sha = git("rev-parse", "HEAD")
    monkeypatch.setattr(results, "REPO_ROOT", repo)
    assert results.git_commit() == sha
    for p in results.REGENERATED_PATHS:  # regenerated outputs changed, and a new untracked file
        (repo / p / "table.csv").write_text("a\n2\n")
    (repo / "notes.txt").write_text("untracked\n")
    assert results.git_commit() == sha
    (repo / "siu_lib" / "code.py").write_text("x = 2\n")
    assert results.git_commit() == sha + "-dirty"
    # outside any checkout (git may not look above tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setattr(results, "REPO_ROOT", outside)
    assert results.git_commit() == "unknown"
