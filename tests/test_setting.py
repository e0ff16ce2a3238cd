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
