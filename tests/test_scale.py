"""Paper scale: the accelerate configs, the paper-scale profiles, the command line's errors, the
trainer on two processes, and evaluation under LoRA without a second copy of the weights."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from siu_lib.cli import main
from siu_lib.errors import ConfigError, ModelLoadError, UnknownNameError
from siu_lib.paths import REPO_ROOT
from siu_lib.scale import MODEL_PROFILES, PAPER_TRAIN, ModelProfile, is_synthetic, resolve_profile

CONFIGS = sorted((REPO_ROOT / "configs" / "accelerate").glob("*.yaml"))


# ------------------------------------------------------------------------------ configs

def test_accelerate_configs_parse_and_name_existing_settings():
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import launch_command_parser

    assert [p.stem for p in CONFIGS] == ["ddp", "single_gpu", "zero2", "zero3"]
    launch_options = {a.dest for a in launch_command_parser()._actions}
    kinds = {}
    for path in CONFIGS:
        config = ClusterConfig.from_yaml_file(path)  # raises on a key accelerate does not know
        assert config.mixed_precision == "bf16" and not config.use_cpu
        assert set(config.deepspeed_config or {}) <= launch_options, path.name
        kinds[path.stem] = (config.distributed_type.value, (config.deepspeed_config or {}).get("zero_stage"))
    assert kinds == {"single_gpu": ("NO", None), "ddp": ("MULTI_GPU", None),
                     "zero2": ("DEEPSPEED", 2), "zero3": ("DEEPSPEED", 3)}


# ------------------------------------------------------------------------------ profiles

def test_paper_scale_profiles_carry_the_paper_s_defaults():
    assert set(MODEL_PROFILES) == {"llava-7b", "llava-13b"}
    p = resolve_profile("llava-7b", "")
    assert isinstance(p, ModelProfile) and not is_synthetic(p) and p.instance == "paper"
    assert p.hub_id == "llava-hf/llava-1.5-7b-hf" and p.dtype == "bfloat16" and p.seeds == (0, 1, 2)
    u = p.unlearn
    assert (u.lora_r, u.lora_alpha, u.lora_dropout, u.lr, u.projector_lr, u.batch_size, u.steps, u.bf16) == \
        (128, 256, 0.05, 3e-4, 2e-5, 4, 6, True)
    assert p.training_args()["activation_checkpointing"] is True
    assert resolve_profile("llava-13b", "").hub_id == "llava-hf/llava-1.5-13b-hf"
    small = resolve_profile("llava-7b", "unlearn.batch_size=1")
    assert small.unlearn.batch_size == 1 and small.name == "llava-7b+unlearn.batch_size=1"
    assert is_synthetic(resolve_profile("smoke", ""))
    assert PAPER_TRAIN.warmup_steps() == 1


def test_the_checkpoint_is_the_folder_given_or_the_hub_id(tmp_path):
    p = resolve_profile("llava-7b", "")
    assert p.model_source() in (p.hub_id, str(REPO_ROOT / "data" / "models" / "llava-1.5-7b-hf"))
    assert resolve_profile("llava-7b", f"model_path={tmp_path}").model_source() == str(tmp_path)
    with pytest.raises(ModelLoadError, match="not a folder"):
        resolve_profile("llava-7b", f"model_path={tmp_path / 'absent'}").model_source()
    with pytest.raises(UnknownNameError, match="llava-7b"):
        resolve_profile("llava-70b", "")


# ------------------------------------------------------------------------------ command line

def test_cli_errors_name_the_bad_value(capsys, tmp_path):
    assert main(["unlearn", "--profile", "llava-70b", "--concept", "facebook"]) == 1
    assert "unknown profile 'llava-70b'" in capsys.readouterr().err
    # the paper instance ships without images: the concept's forget image is asked for
    assert main(["unlearn", "--profile", "llava-7b", "--concept", "facebook"]) == 1
    err = capsys.readouterr().err
    assert "'facebook' (Facebook) has no forget image" in err and "images/facebook/forget.png" in err
    assert main(["unlearn", "--profile", "llava-7b", "--concept", "atlantis"]) == 1
    assert "atlantis" in capsys.readouterr().err
    assert main(["unlearn", "--profile", "smoke", "--bench", str(tmp_path / "none"), "--concept", "c00"]) == 1
    assert "is not an MMUBench instance folder" in capsys.readouterr().err


def test_cli_names_a_missing_model_folder(capsys, tmp_path):
    from siu_lib.bench.synthetic import write_synthetic
    from siu_lib.world import World, WorldConfig

    bench = write_synthetic(World(WorldConfig(world_seed=1, n_concepts=2, images_per_concept=3, image_size=32,
                                              group_photos_per_pair=0)), tmp_path / "bench", progress=False)
    missing = tmp_path / "no-model"
    code = main(["unlearn", "--profile", "smoke", "--bench", str(bench), "--model", str(missing), "--concept", "c00"])
    assert code == 1 and f"model folder does not exist: {missing}" in capsys.readouterr().err


def test_training_arguments_for_the_machine_never_override_the_method_s():
    from siu_lib.train import TrainConfig

    args = TrainConfig().training_arguments("out", grad_accum=2, extra={"activation_checkpointing": True})
    assert args.gradient_accumulation_steps == 2 and args.activation_checkpointing
    with pytest.raises(ConfigError, match="learning_rate"):
        TrainConfig().training_arguments("out", extra={"learning_rate": 1.0})
    with pytest.raises(ConfigError, match="grad_accum"):
        TrainConfig().training_arguments("out", grad_accum=0)


# ------------------------------------------------------------------------------ two processes

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_follow_the_loss_trajectory_of_one(micro, tmp_path):
    """SIU on two CPU processes (gloo, ``torchrun``), each with 2 records per step, against one
    process with two micro-batches of 2 per step: the same records, the same global batch of 4
    and the same averaged gradient, so the same loss at every step up to float rounding
    (tolerance 1e-4 relative)."""
    from siu_lib.bench.synthetic import write_synthetic

    model_dir, bench_dir = tmp_path / "model", tmp_path / "bench"
    micro.model.save_pretrained(model_dir)
    micro.processor.save_pretrained(model_dir)
    write_synthetic(micro.world, bench_dir, progress=False)
    common = ["unlearn", "--profile", "smoke", "--model", str(model_dir), "--bench", str(bench_dir),
              "--concept", micro.world.concepts[0].concept_id,
              "--set", "unlearn.batch_size=2 unlearn.lora_r=8 unlearn.lora_alpha=16 unlearn.lora_dropout=0.0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT), "SIU_PROGRESS": "off"}
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    done = subprocess.run([sys.executable, "-m", "siu_lib.cli", *common, "--grad-accum", "2", "--history", str(one)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                           "-m", "siu_lib.cli", *common, "--history", str(two)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert (a["world_size"], b["world_size"]) == (1, 2)
    assert [h["step"] for h in a["history"]] == [h["step"] for h in b["history"]] == list(range(1, 7))
    for x, y in zip(a["history"], b["history"]):
        for term in ("loss", "ce", "dmk"):
            assert y[term] == pytest.approx(x[term], rel=1e-4, abs=1e-6), (x["step"], term)
    # the steps train: the trajectory is not flat
    assert a["history"][-1]["ce"] < 0.9 * a["history"][0]["ce"]


# ------------------------------------------------------------------------------ no second copy

def test_evaluation_under_lora_shares_the_base_weights_and_gives_the_same_row(micro, tmp_path, monkeypatch):
    """``run_one(share_base=True)`` trains adapters put into M0 itself and evaluates against the
    same model with its adapters disabled: the base weights the evaluation's two models see are
    one storage (no second copy), M0 is unchanged afterwards, and the row equals the one a deep
    copy gives, value for value."""
    import torch

    from siu_lib import runs
    from siu_lib.bench import load_benchmark, write_synthetic
    from siu_lib.evaluate import EvalConfig
    from siu_lib.runs import RunSpec, original_report, run_one
    from siu_lib.train import TrainConfig

    bench = load_benchmark(write_synthetic(micro.world, tmp_path / "bench", progress=False))
    cfg = EvalConfig(n_generality_images=2, n_cdis_images=1, n_other_images=1, n_vqa_items=4)
    tcfg = TrainConfig(steps=6, batch_size=4, lr=2e-2, projector_lr=1e-3, lora_r=8, lora_alpha=16,
                       lora_dropout=0.0, seed=0)
    spec = RunSpec("micro", "c00", "siu", 0, 6)
    m0 = micro.fresh()
    base = {n: (p.data_ptr(), p.detach().clone()) for n, p in m0.named_parameters()}
    original_eval = original_report(m0, micro.processor, bench, "c00", cfg)
    seen = {}
    evaluate = runs.evaluate_unlearning

    def spy(model, reference, *args, **kwargs):
        seen["model"] = {p.data_ptr() for p in model.parameters()}
        seen["reference"] = {p.data_ptr() for p in reference.parameters()}
        seen["view"] = reference.eval() is reference and reference.to("cpu") is reference
        return evaluate(model, reference, *args, **kwargs)

    monkeypatch.setattr(runs, "evaluate_unlearning", spy)
    shared = run_one(spec, m0, micro.processor, bench, micro.world.fake_names, tcfg, cfg, original_eval,
                     share_base=True)
    assert seen["reference"] == seen["model"]  # the reference is the same parameters, adapters off
    assert seen["view"]  # eval() and to() keep the adapters-disabled view, never the trained model
    assert {ptr for ptr, _ in base.values()} <= seen["model"]  # M0's own weights, not a copy of them
    after = dict(m0.named_parameters())
    assert set(after) == set(base)  # the adapters are gone again, and the trained projector copy
    assert tcfg.train_projector
    assert all(after[n].data_ptr() == ptr and torch.equal(after[n], value) for n, (ptr, value) in base.items())
    copied = run_one(spec, micro.fresh(), micro.processor, bench, micro.world.fake_names, tcfg, cfg, original_eval)
    assert seen["reference"].isdisjoint(seen["model"])  # a deep copy's run: two sets of weights
    for key, value in copied.items():
        if key.endswith("_seconds"):
            continue
        if isinstance(value, float):
            assert shared[key] == pytest.approx(value, nan_ok=True), key
        else:
            assert shared[key] == value, key


# ------------------------------------------------------------------------------ the paper instance

def test_the_paper_instance_carries_every_prompt_set_and_facts():
    from siu_lib.bench.paper import PAPER_FAKE_NAMES, load_paper

    bench = load_paper()
    words = {w.lower() for c in bench.concepts for w in c.name.split() + [t for t in c.special_tokens]}
    for c in bench.concepts:
        assert {"open", "yesno", "multilingual", "multihop", "mia"} <= set(c.prompts), c.concept_id
        assert all(c.prompts[k] for k in ("open", "yesno", "multilingual", "multihop", "mia")), c.concept_id
        keys = [f.key for f in c.facts]
        assert len(keys) == 4 and keys[-1] == "summary" and len(set(keys)) == 4, c.concept_id
        assert all(c.name in f.question and f.value in f.answer for f in c.facts[:3]), c.concept_id
        (hop,) = c.prompts["multihop"]
        # asked through the picture, never by name; its answer is one of the concept's own facts
        assert c.name not in hop["question"] and "picture" in hop["question"]
        assert hop["answer"] in {f.value for f in c.facts}, c.concept_id
        assert not any(c.name in q for q in c.prompts["mia"] + c.prompts["open"])
    assert len(PAPER_FAKE_NAMES) == len(set(PAPER_FAKE_NAMES)) >= 64
    assert not {w.lower() for n in PAPER_FAKE_NAMES for w in n.split()} & words


# ------------------------------------------------------------------------------ the 7B architecture

def test_the_7b_architecture_builds_at_reduced_depth_and_a_siu_step_runs():
    """LLaVA-1.5-7B's architecture (full width, one text and one vision layer, random weights)
    builds on the CPU with as many parameters as :func:`parameter_counts` computes, the frozen
    copy costs the estimate exactly one set of weights, and one SIU step (DMK against the
    adapters-disabled reference, one warm-up and one timed) runs with a finite time and memory.
    float32 and LoRA rank 8 keep it quick; the published depths give 7.06 B and 13.35 B."""
    import math

    from transformers import LlavaForConditionalGeneration

    from siu_lib.paper_scale import StepSetup, llava_config, measure_step, memory_estimate, parameter_counts

    config = llava_config("7b", text_layers=1, vision_layers=1)
    assert (config.text_config.hidden_size, config.vision_config.image_size) == (4096, 336)
    import torch

    with torch.device("meta"):
        built = LlavaForConditionalGeneration(config)
    counts = parameter_counts(config)
    assert sum(p.numel() for p in built.parameters()) == sum(v for k, v in counts.items() if k != "lora")
    full = {size: parameter_counts(llava_config(size)) for size in ("7b", "13b")}
    assert round(sum(v for k, v in full["7b"].items() if k != "lora") / 1e9, 2) == 7.06
    assert round(sum(v for k, v in full["13b"].items() if k != "lora") / 1e9, 2) == 13.35
    est = {k: memory_estimate(llava_config("7b"), k) for k in ("siu_copy", "siu_adapters")}
    assert est["siu_copy"]["total"] - est["siu_adapters"]["total"] == pytest.approx(est["siu_adapters"]["weights"])
    with pytest.raises(ConfigError, match="depth"):
        llava_config("7b", text_layers=33)

    row = measure_step(StepSetup(size="7b", kind="siu_adapters", text_layers=1, vision_layers=1, batch=1,
                                 text_tokens=16, lora_r=8, dtype="float32", steps=1))
    assert row["device"] == "cpu" and row["text_layers"] == 1
    assert 0 < row["seconds_per_step"] < 600 and math.isfinite(row["peak_gib"]) and row["peak_gib"] > 1.0
