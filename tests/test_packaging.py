"""The environment files pin the same packages at the same versions."""

from __future__ import annotations

import re
import tomllib

import yaml

from siu_lib.paths import REPO_ROOT


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)==([^\s;]+)\s*", line)
        assert match, f"not an exact pin: {line!r}"
        pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def test_environment_yml_mirrors_every_pin_of_pyproject():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    pyproject = _pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda = _pins([p for p in pip if p != "-e ."])
    assert conda == pyproject
    # every optional extra is pinned exactly too
    for extra, deps in project["optional-dependencies"].items():
        assert _pins(deps), extra
