"""Overrides of a profile for one run (``SET="path=value ..."``): parsing, types, errors, and
the results folder an overridden profile gets."""

from __future__ import annotations

import pytest

from siu_lib.errors import OverrideError, SIUError
from siu_lib.overrides import MAX_NAME_LENGTH, apply_overrides, leaves, parse_assignments
from siu_lib.paths import results_dir
from siu_lib.plots import figure_dir
from siu_lib.profiles import PROFILES, get_profile
from siu_lib.results import run_metadata


def test_assignments_are_split_on_whitespace_and_need_an_equals_sign():
    assert parse_assignments("a.b=1  c=x,y\n") == [("a.b", "1"), ("c", "x,y")]
    assert parse_assignments("") == [] and parse_assignments(None) == []
    with pytest.raises(OverrideError, match="'world_seed'"):
        parse_assignments("world_seed")
    with pytest.raises(OverrideError, match="'=3'"):
        parse_assignments("=3")
    with pytest.raises(OverrideError, match="given twice"):
        parse_assignments("a=1 a=2")


def test_dotted_paths_and_unique_leaf_names_reach_the_same_field():
    smoke = PROFILES["smoke"]
    by_leaf, pairs = apply_overrides(smoke, "world_seed=11 n_concepts=5")
    by_path, pairs_path = apply_overrides(smoke, "world.world_seed=11 world.n_concepts=5")
    assert by_leaf == by_path and pairs == pairs_path
    assert by_leaf.world.world_seed == 11 and by_leaf.world.n_concepts == 5
    assert pairs == (("world.n_concepts", "5"), ("world.world_seed", "11"))
    # dict keys are path components; nothing else changes
    out, _ = apply_overrides(smoke, "pretrain.tiny.steps=100")
    assert out.pretrain["tiny"].steps == 100 and out.pretrain["tiny"].lr == smoke.pretrain["tiny"].lr
    assert out.unlearn == smoke.unlearn and smoke.pretrain["tiny"].steps == 400  # the shipped one is untouched


def test_values_are_parsed_by_the_fields_type():
    default = PROFILES["default"]
    out, pairs = apply_overrides(default, "seeds=0,1 unlearn.bf16=none unlearn.lr=2e-3 unlearn.use_lora=false")
    assert out.seeds == (0, 1) and out.unlearn.bf16 is None and out.unlearn.lr == 0.002
    assert out.unlearn.use_lora is False
    assert dict(pairs) == {"seeds": "0,1", "unlearn.bf16": "none", "unlearn.lr": "0.002",
                           "unlearn.use_lora": "false"}
    out, _ = apply_overrides(default, "unlearn.bf16=true pretrain.tiny.withheld=c01,c02")
    assert out.unlearn.bf16 is True and out.pretrain["tiny"].withheld == ("c01", "c02")


@pytest.mark.parametrize("text, message", [
    ("world_seed=eleven", r"world\.world_seed='eleven': expected an integer"),
    ("pretrain.tiny.steps=1.5", r"pretrain\.tiny\.steps='1\.5': expected an integer"),
    ("unlearn.use_lora=maybe", r"unlearn\.use_lora='maybe': expected true or false"),
    ("unlearn.lr=fast", r"unlearn\.lr='fast'"),
    ("seeds=0,x", r"seeds='x': expected an integer"),
    ("world.seed=3", r"no field 'world\.seed'"),
    ("nonsense=3", r"no field 'nonsense'"),
    ("steps=3", r"'steps' is ambiguous.*pretrain\.tiny\.steps.*unlearn\.steps"),
    ("name=mine", r"no field 'name'"),
    ("cpu_path=native", r"no field 'cpu_path'"),
    ("sweep=x", r"no field 'sweep'"),
    ("eval_images=50", r"eval_images=.50. is rejected: eval_images \(50\)"),
    ("pretrain.tiny.lr=0", r"pretrain\.tiny\.lr='0' is rejected: lr must be > 0"),
    ("step_concepts=6", r"step_concepts=.6. is rejected: step_concepts \(6\) must be between 1 and table_concepts \(5\)"),
    ("further_concepts=16", r"further_concepts \(16\) must be between 0 and n_concepts - table_concepts \(15\)"),
])
def test_a_bad_override_is_one_clear_error_naming_it(text, message):
    with pytest.raises(OverrideError, match=message):
        apply_overrides(PROFILES["default"], text)


def test_a_value_a_config_rejects_is_an_override_error_naming_the_override():
    with pytest.raises(OverrideError, match=r"world\.n_concepts='1' is rejected"):
        apply_overrides(PROFILES["smoke"], "n_concepts=1")
    assert issubclass(OverrideError, SIUError)


def test_every_leaf_of_every_profile_is_reachable_by_its_dotted_path():
    for profile in PROFILES.values():
        for path, (value, _) in leaves(profile).items():
            out, pairs = apply_overrides(profile, f"{path}={_text(value)}")
            assert out == profile, path  # the same value parses back to the same profile
            assert pairs[0][0] == path


def _text(value):
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


def test_an_overridden_profile_has_its_own_name_folders_and_provenance():
    p = get_profile("smoke", "world_seed=11")
    assert p.name == "smoke+world.world_seed=11" and p.overrides == (("world.world_seed", "11"),)
    assert results_dir(p.name) != results_dir("smoke") and results_dir(p.name).parent == results_dir("smoke").parent
    assert figure_dir(p.name).is_relative_to(results_dir(p.name))
    assert run_metadata()["profile"] == {"name": p.name, "overrides": {"world.world_seed": "11"}}
    # the same override spelled with its path is the same run
    assert get_profile("smoke", "world.world_seed=11").name == p.name
    plain = get_profile("smoke", "")
    assert plain.name == "smoke" and plain.overrides == ()
    assert run_metadata()["profile"] == {"name": "smoke", "overrides": {}}


def test_overrides_come_from_SIU_SET_when_not_given(monkeypatch):
    monkeypatch.setenv("SIU_SET", "world_seed=12")
    assert get_profile("smoke").world.world_seed == 12
    assert get_profile("smoke", "").world.world_seed == 0  # an explicit empty set wins


def test_a_long_override_list_is_named_by_a_digest():
    many = " ".join(f"{k}=1" for k in ("eval_images", "unlearn_concepts", "table_concepts", "lora_r",
                                       "lora_alpha", "batch_size", "vision_layers", "text_layers"))
    p = get_profile("smoke", many.replace("batch_size", "unlearn.batch_size").replace(
        "vision_layers", "models.tiny.vision_layers").replace("text_layers", "models.tiny.text_layers"))
    assert len(p.name) <= MAX_NAME_LENGTH and p.name.startswith("smoke+") and len(p.overrides) == 8
