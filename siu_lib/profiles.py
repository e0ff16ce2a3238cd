"""Run profiles: every knob of a whole-chain run in one documented place.

A notebook's only parameter is ``PROFILE``; everything it does follows from
:func:`get_profile`. ``default`` regenerates the committed tables and figures;
``smoke`` runs the same code on a small world and a micro model in a few minutes (CI).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import UnknownNameError
from .experiments import SweepSetting
from .models import EmbeddedConfig, PretrainConfig, embedded_config
from .results import cpu_has_native_bf16
from .train import TrainConfig
from .world import WorldConfig


@dataclass(frozen=True)
class Profile:
    """One whole-chain configuration.

    Attributes:
        name: ``default`` or ``smoke``.
        world: the synthetic world.
        models: model size name -> architecture of the embedded model.
        pretrain: model size name -> pre-training settings.
        unlearn: the embedded unlearning defaults (LoRA rank, learning rates, steps, batch);
            the paper's values (spec section 4) are scaled to the embedded model, see
            :data:`EMBEDDED_TRAIN` for how they were chosen.
        eval_images: generality images per concept used by the knowledge evaluation.
        unlearn_concepts: how many concepts (the first ones) SIU's targets are measured on
            (notebook 03; issue 4 asks for at least 5).
        table_concepts: how many concepts (the first ones) every method is run on for Table 1
            and Table 7 (notebook 04).
        seeds: unlearning seeds per result (paper: 3).
        step_grid: step counts of the step curves (paper: 6 ... 35).
        sweep: the settings of notebook 03's selection sweep (overrides of ``unlearn``; the
            empty setting is ``unlearn`` itself), run on the targets protocol, where the rule
            of :func:`siu_lib.experiments.choose_setting` is applied to them (on the default
            profile it picks ``unlearn``: ``tests/test_evaluate.py`` checks the committed
            ``siu_sweep.csv``; the smoke profile's micro runs only exercise the chain).
    """

    name: str
    world: WorldConfig
    models: dict[str, EmbeddedConfig]
    pretrain: dict[str, PretrainConfig]
    unlearn: TrainConfig
    eval_images: int
    unlearn_concepts: int
    table_concepts: int
    seeds: tuple[int, ...]
    step_grid: tuple[int, ...] = field(default=(6, 10, 15, 20, 25, 30, 35))
    sweep: tuple[SweepSetting, ...] = ()


#: Embedded-model unlearning defaults. The paper's LoRA r=128 / lr 3e-4 is sized for a 7B
#: model; for the 2.4 M-parameter embedded model the values below were chosen on notebook 03's
#: own targets protocol (5 concepts x 3 seeds, 20 generality images; so that table is not an
#: independent measurement of them) by one rule: the largest generality EM among the settings
#: that keep the other concepts' recognition >= 95% of the original's, the own facts (>= 90%)
#: and the diversity (:func:`siu_lib.experiments.choose_setting`). Notebook 03 reruns the
#: rows of this grid that bracket the choice (:data:`EMBEDDED_SWEEP`) on that protocol, applies
#: the rule and writes ``data/results/default/siu_sweep.csv`` and ``figures/siu_tradeoff.png``.
#: The whole grid, measured by sessions 13-14 with the same protocol outside the chain on world
#: revision 10's tiny checkpoint (``tiny-b122f7b16fc8``, AVX2 EPYC), projector lr 1e-4, alpha =
#: 2 x rank, generality EM / others' recognition ratio:
#: rank 16: lr 7e-3 51.5 / 0.972, lr 8e-3 58.5 / 0.967, lr 1e-2 71.0 / 0.911;
#: rank 32: lr 5e-3 57.7 / 0.982; rank 64: lr 3e-3 59.8 / 0.981, lr 3.5e-3 67.8 / 0.958,
#: lr 4e-3 77.2 / 0.914; rank 128 (the paper's rank): lr 2e-3 70.8 / 0.951 (chosen), lr 2.5e-3
#: 80.8 / 0.909. Own facts >= 95.6% and diversity within 5.5 points everywhere. A larger rank
#: at a smaller lr moves the frontier (the same EM costs less specificity), and every row
#: trades forgetting for specificity as the lr grows: no setting meets every target of issue 4.
#: Around the choice (rank 128, lr 2e-3, same checkpoint and protocol): projector lr 1e-3
#: 71.5 / 0.942; the projector frozen 71.3 / 0.951 (81.3 / 0.911 at lr 2.5e-3); LoRA dropout 0
#: 71.2 / 0.954. The projector's lr barely matters. The last two are within half a point of the
#: choice (1.5 of its 300 generality answers) and leave the paper's design (a trained
#: projector, dropout 0.05), so they are not adopted.
#: History: on world revision 7, whose names shared first tokens (see
#: :func:`siu_lib.world._invent_name`), the same rule picked rank 16, lr 7e-3 (38.0 / 0.962 on
#: the machine of those tables; 21.7 / 0.977 at lr 7e-3 and 37.3 / 0.965 at rank 64, lr 3e-3 on
#: the AVX2 EPYC).
EMBEDDED_TRAIN = TrainConfig(steps=6, batch_size=4, lr=2e-3, projector_lr=1e-4, lora_r=128,
                             lora_alpha=256, lora_dropout=0.05, seed=0)
#: Notebook 03's selection sweep around :data:`EMBEDDED_TRAIN` (alpha = 2 x rank, projector lr
#: 1e-4 unless set): the rows of the grid above that bracket the choice, on each side of the
#: recognition-ratio threshold, and four settings outside the recipe that show where the
#: trade-off comes from (six target-(b) records instead of two; twelve steps instead of six;
#: full fine-tuning of the language model instead of LoRA, at two learning rates, which shows
#: that the trade-off is not LoRA's limited capacity: outside the chain, session 17 measured
#: 73.2 / 0.951 at lr 1.5e-3 and 93.7 / 0.828 at 3e-3; and LoRA rank 256, alpha 512, is on the
#: rank-128 frontier too: 66.8 / 0.968 at lr 1e-3, 78.8 / 0.926 at 1.25e-3, 85.2 / 0.898 at
#: 1.5e-3 and 88.7 / 0.889 at 1.75e-3, on the checkpoint and protocol above).
EMBEDDED_SWEEP = (
    SweepSetting("r16 lr 7e-3", {"lora_r": 16, "lora_alpha": 32, "lr": 7e-3}),
    SweepSetting("r16 lr 1e-2", {"lora_r": 16, "lora_alpha": 32, "lr": 1e-2}),
    SweepSetting("r64 lr 3e-3", {"lora_r": 64, "lora_alpha": 128, "lr": 3e-3}),
    SweepSetting("r64 lr 3.5e-3", {"lora_r": 64, "lora_alpha": 128, "lr": 3.5e-3}),
    SweepSetting("r64 lr 4e-3", {"lora_r": 64, "lora_alpha": 128, "lr": 4e-3}),
    SweepSetting("r128 lr 2e-3", {}),
    SweepSetting("r128 lr 2.5e-3", {"lr": 2.5e-3}),
    SweepSetting("r128 lr 2e-3, projector lr 1e-3", {"projector_lr": 1e-3}),
    SweepSetting("counts 9/6/7/7", data={"n_false_description": 6}, in_recipe=False),
    SweepSetting("12 steps", {"steps": 12}, in_recipe=False),
    SweepSetting("full FT lr 1.5e-3", {"use_lora": False, "lr": 1.5e-3}, in_recipe=False),
    SweepSetting("full FT lr 3e-3", {"use_lora": False, "lr": 3e-3}, in_recipe=False),
)
#: the smoke profile's 0.3 M-parameter micro model moves with a smaller rank; its runs only
#: check that the chain executes (no committed number comes from them)
MICRO_TRAIN = TrainConfig(steps=6, batch_size=4, lr=1e-2, projector_lr=1e-3, lora_r=8,
                          lora_alpha=16, lora_dropout=0.05, seed=0)

#: the smoke profile's sweep: enough settings to exercise the rule and the figure
MICRO_SWEEP = (
    SweepSetting("r8 lr 5e-3", {"lr": 5e-3}),
    SweepSetting("r8 lr 1e-2", {}),
    SweepSetting("counts 9/6/7/7", data={"n_false_description": 6}, in_recipe=False),
    SweepSetting("12 steps", {"steps": 12}, in_recipe=False),
    SweepSetting("full FT lr 3e-3", {"use_lora": False, "lr": 3e-3}, in_recipe=False),
)

MICRO_MODEL = EmbeddedConfig(
    name="micro", image_size=32, patch_size=8, vision_hidden_size=48, vision_intermediate_size=96,
    vision_layers=1, vision_heads=2, text_hidden_size=96, text_intermediate_size=192,
    text_layers=2, text_heads=2, vocab_size=600, max_position_embeddings=160)

PROFILES: dict[str, Profile] = {
    "default": Profile(
        name="default",
        world=WorldConfig(world_seed=0, n_concepts=20, images_per_concept=50, image_size=64),
        models={"tiny": embedded_config("tiny"), "small": embedded_config("small")},
        # step counts sized to the 10-minute pre-training budget on 2 cores: tiny 0.21 s/step;
        # small 0.43 s/step with bf16 autocast (1.3x faster than fp32 at its widths), on the
        # machine that made the committed tables. bf16 only where the CPU multiplies bfloat16
        # natively (cpu_has_native_bf16): elsewhere PyTorch's generic bf16 kernel made small
        # 20x slower than fp32 (15.7 vs 0.77 s/step on an AVX2 EPYC, `make bench`'s
        # pretrain_step_cost.csv at 788eed0: 5.6 h instead of 16.4 min for its 1250 steps), so
        # small pre-trains in fp32 there (a different config, hence its own checkpoint key)
        pretrain={"tiny": PretrainConfig(steps=2600, batch_size=16, lr=2e-3, align_fraction=0.25,
                                         bucket_batches=8, log_every=50),
                  "small": PretrainConfig(steps=1250, batch_size=16, lr=1.5e-3, align_fraction=0.25,
                                          bucket_batches=8, bf16=cpu_has_native_bf16(), log_every=50)},
        unlearn=EMBEDDED_TRAIN,
        eval_images=49,
        unlearn_concepts=5,
        table_concepts=1,
        seeds=(0, 1, 2),
        sweep=EMBEDDED_SWEEP,
    ),
    "smoke": Profile(
        name="smoke",
        world=WorldConfig(world_seed=0, n_concepts=6, images_per_concept=8, image_size=32,
                          group_photos_per_pair=1),
        models={"tiny": MICRO_MODEL},
        pretrain={"tiny": PretrainConfig(steps=400, batch_size=16, lr=3e-3, log_every=50)},
        unlearn=MICRO_TRAIN,
        eval_images=7,
        unlearn_concepts=1,
        table_concepts=1,
        seeds=(0,),
        step_grid=(6, 10),
        sweep=MICRO_SWEEP,
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """The named profile (default: ``$SIU_PROFILE`` or ``"default"``)."""
    name = name or os.environ.get("SIU_PROFILE", "default")
    if name not in PROFILES:
        raise UnknownNameError(f"unknown profile {name!r}; known: {sorted(PROFILES)}")
    return PROFILES[name]
