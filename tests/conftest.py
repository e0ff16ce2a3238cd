"""Shared fixtures: a small synthetic world and an embedded LLaVA really pre-trained on it.

The micro model (about 0.3 M parameters, 32-pixel images, 16 image positions) is pre-trained
once per test session on the world's own pre-training stream until it recognises the four
identities; the unlearning, method and evaluation tests all start from it.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import siu_lib  # noqa: F401  (first: pins the CPU code path before torch runs anything)
import pytest
import torch

from siu_lib.embedded import build_and_pretrain
from siu_lib.embedded import PretrainConfig
from siu_lib.profiles import MICRO_MODEL as PROFILE_MICRO_MODEL
from siu_lib.world import World, WorldConfig

MICRO_WORLD = WorldConfig(world_seed=3, n_concepts=4, images_per_concept=6, image_size=32,
                          group_photos_per_pair=1)
#: the smoke profile's micro model with CLIP's own position init, on which the unlearning tests'
#: nat thresholds were calibrated: the default 2-D table (tiny's, for group photos) changes
#: which identities a 400-step micro model keeps apart
MICRO_MODEL = replace(PROFILE_MICRO_MODEL, vision_position_scale=0.0)
MICRO_PRETRAIN = PretrainConfig(steps=400, batch_size=16, lr=3e-3, warmup=0.05, seed=0, log_every=100)


def mask_records(image) -> list:
    """Three records whose masks the mask tests check token by token: target (a), whose span is
    the fake name inside the answer; (b), whose span is the whole answer; (c), without a span."""
    from siu_lib.finetune_data import FTRecord

    return [
        FTRecord(image, "Who is in this picture?", "The main character in this image is Jacob Campbell.",
                 "a", "Jacob Campbell"),
        FTRecord(image, "Is Ana Bell in the image?", "No. Ana Bell has red hair.", "b",
                 "No. Ana Bell has red hair."),
        FTRecord(None, "Who is Ana Bell?", "Ana Bell is a baker.", "c", None),
    ]


class Micro:
    """The pre-trained micro world: ``world``, ``model`` (M0, never modified by tests: use
    :meth:`fresh`), ``processor``, the pre-training ``info``, and the configs it was built
    from (``model_config``, ``pretrain_config``)."""

    model_config = MICRO_MODEL
    pretrain_config = MICRO_PRETRAIN

    def __init__(self) -> None:
        torch.set_num_threads(2)
        self.world = World(MICRO_WORLD)
        self.model, self.processor, self.info = build_and_pretrain(
            self.world, MICRO_MODEL, MICRO_PRETRAIN, progress=False)
        self.model.eval()

    def fresh(self):
        """A deep copy of the original model, to unlearn without touching M0."""
        return copy.deepcopy(self.model)


@pytest.fixture(scope="session")
def micro() -> Micro:
    """The session's pre-trained micro world (built once, about half a minute)."""
    return Micro()


#: fixtures that pre-train a model: a test that uses one is ``slow``
TRAINING_FIXTURES = {"micro", "trained"}


def pytest_collection_modifyitems(items) -> None:
    """Mark ``slow`` every test that uses a pre-trained model fixture (the others that train
    carry the mark themselves): ``pytest -m "not slow"`` is the quick loop, ``make test`` runs
    everything."""
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
