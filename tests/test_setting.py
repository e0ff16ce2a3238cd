"""One setting for either kind of profile: the instance, the fake-name pool and the models a
notebook or a run works on (``siu_lib.setting``)."""

from __future__ import annotations

import pytest
import torch

from siu_lib.bench.paper import PAPER_FAKE_NAMES
from siu_lib.errors import BenchmarkError, UnknownNameError
from siu_lib.profiles import get_profile
from siu_lib.scale import resolve_profile
from siu_lib.setting import open_setting
from siu_lib.world import World


def test_an_embedded_profile_gives_its_synthetic_instance_world_names_and_sizes():
    profile = get_profile("smoke")
    setting = open_setting(profile)
    assert setting.synthetic
    assert len(setting.bench.concepts) == profile.world.n_concepts
    assert setting.fake_names == tuple(World(profile.world).fake_names)
    assert setting.model_names == list(profile.models) == ["tiny"]
    assert setting.concept_ids(2, start=1) == [c.concept_id for c in setting.bench.concepts[1:3]]
    setting.check_images(setting.concept_ids(profile.table_concepts))  # the generated images are there
    with pytest.raises(UnknownNameError, match="'small'"):
        setting.model("small")


def test_a_paper_scale_profile_gives_the_paper_instance_and_its_checkpoint(micro, tmp_path):
    """Under ``llava-7b`` with ``model_path`` set to a folder (here the micro model's, standing in
    for the downloaded checkpoint): the ``paper`` instance and its fake-name pool, no synthetic
    world, one model named after the profile, loaded in the profile's dtype; the concepts whose
    images the user has not put in place are named before anything runs."""
    folder = tmp_path / "llava-1.5-7b-hf"
    micro.model.save_pretrained(folder)
    micro.processor.save_pretrained(folder)
    profile = resolve_profile("llava-7b", f"model_path={folder}")
    setting = open_setting(profile)
    assert not setting.synthetic
    assert setting.bench.name == "paper" and len(setting.bench.concepts) == 20
    assert setting.fake_names == tuple(PAPER_FAKE_NAMES)
    assert setting.model_names == ["llava-7b"] and profile.name.startswith("llava-7b+")
    model, processor = setting.model()
    assert setting.model() is setting.models()["llava-7b"]  # loaded once
    assert next(model.parameters()).dtype == torch.bfloat16
    first = setting.concept_ids(2)
    with pytest.raises(BenchmarkError, match=first[0]) as err:
        setting.check_images(first)
    assert first[1] in str(err.value) and "Run at paper scale" in str(err.value)
    # the protocol fields the notebooks read
    assert (profile.table_concepts, profile.further_concepts, profile.multi_counts) == (5, 8, (1, 5, 10, 20))


def test_how_runs_use_memory_and_how_much_they_evaluate_follow_the_kind_of_profile():
    """An embedded profile trains deep copies with no machine-side arguments and evaluates on
    its ``eval_images``; a real model shares its weights with the reference under LoRA, uses
    gradient checkpointing, and has no further limit on generality images unless set."""
    smoke = open_setting(get_profile("smoke"))
    assert smoke.main_model == "tiny"
    assert smoke.run_options == {"share_base": False, "training_args": None}
    assert smoke.eval_config(20).n_generality_images == min(20, smoke.profile.eval_images)
    paper = open_setting(resolve_profile("llava-7b"))
    assert paper.run_options["share_base"] is True
    assert paper.run_options["training_args"]["activation_checkpointing"] is True
    assert paper.eval_config(20).n_generality_images == 20 and paper.eval_config(10).n_generality_images == 10
    limited = open_setting(resolve_profile("llava-7b", "eval_images=5 gradient_checkpointing=false"))
    assert limited.eval_config(20).n_generality_images == 5
    assert limited.run_options == {"share_base": True, "training_args": None}


def test_non_members_are_identities_the_world_never_shows_and_a_real_model_has_none():
    smoke = open_setting(get_profile("smoke"))
    nonmembers = smoke.nonmembers(2, 3)
    assert len(nonmembers) == 2 and all(len(m.images) == 3 for m in nonmembers)
    shown = {c.name for c in smoke.bench.concepts} | set(smoke.fake_names)
    assert not {m.name for m in nonmembers} & shown
    assert open_setting(resolve_profile("llava-7b")).nonmembers(2, 3) == []


def test_a_profile_instance_folder_and_a_model_folder_replace_the_profiles_own(micro, tmp_path):
    from siu_lib.bench.synthetic import write_synthetic

    instance = write_synthetic(micro.world, tmp_path / "instance", progress=False)
    setting = open_setting(resolve_profile("llava-7b", f"bench_dir={instance}"))
    assert setting.bench.root == instance and len(setting.bench.concepts) == len(micro.world.concepts)
    setting.check_images(setting.concept_ids(len(micro.world.concepts)))  # every image is there
    with pytest.raises(BenchmarkError, match="nowhere"):
        open_setting(resolve_profile("llava-7b", f"bench_dir={tmp_path / 'nowhere'}"))
    folder = tmp_path / "micro"
    micro.model.save_pretrained(folder)
    micro.processor.save_pretrained(folder)
    model, _ = open_setting(get_profile("smoke"), model=str(folder)).model()  # no pre-training
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), micro.model.state_dict().values()))
