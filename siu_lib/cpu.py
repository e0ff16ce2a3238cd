"""One CPU code path on every x86-64 machine: the same commit, profile and seed give the same
checkpoints and tables on an AVX2 CPU and on an AVX-512 one.

PyTorch picks its CPU kernels by the processor's instruction set, and so do MKL (matrix
products) and oneDNN (the vision tower's patch convolution). Their roundings differ in the last
bits, and thousands of training steps amplify that into another checkpoint. Importing
``siu_lib`` therefore pins all three to AVX2 before torch runs its first operation
(:func:`pin_cpu_path`), through the variables of :data:`PINNED_ENV`:

* ``ATEN_CPU_CAPABILITY=avx2``: PyTorch's own vectorised kernels;
* ``MKL_CBWR=AVX2``: MKL's conditional numerical reproducibility on the AVX2 branch;
* ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN's instruction-set cap.

It also sets PyTorch's thread count to :data:`PINNED_THREADS` (whatever ``OMP_NUM_THREADS``
says): a matrix product split over another number of threads sums in another order, so the
thread count moves the last bits as the instruction set does.

A variable the user has set already is left as it is (their setting wins) and recorded.
``SIU_CPU_PATH=native`` (:data:`SWITCH`) turns the pin off for speed; the path actually in
use is then ``native`` (:func:`current_path`), and :func:`siu_lib.profiles.get_profile` gives
the profile's ``-native`` variant, whose checkpoints and results have their own keys and
folders, so nothing made on the native path mixes with the pinned results.
:func:`cpu_path_info` goes into every provenance record (``machine.cpu_path``).

:func:`canary_run` is a short, fixed training run whose losses and final weights are compared
with a committed golden file by ``tests/test_cpu.py``: it fails when the code path is not the
pinned one (``python scripts/cpu_canary.py --write`` regenerates the file).
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any, Mapping, MutableMapping

from .errors import ConfigError

#: the switch: ``avx2`` (default, the pinned path) or ``native`` (the CPU's own kernels)
SWITCH = "SIU_CPU_PATH"
#: the values :data:`SWITCH` takes
PATHS = ("avx2", "native")
#: the number of threads of every CPU operation on the pinned path
PINNED_THREADS = 2
#: the variables that pin PyTorch, MKL and oneDNN to AVX2, and their values
PINNED_ENV: dict[str, str] = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2",
                              "ONEDNN_MAX_CPU_ISA": "AVX2"}
#: the instruction set PyTorch reports (``torch.backends.cpu.get_cpu_capability()``) on the
#: pinned path
PINNED_CAPABILITY = "AVX2"

#: the variables of :data:`PINNED_ENV` that :func:`pin_cpu_path` set in this process (the
#: others were already set by the user, or the pin is off)
_SET_HERE: set[str] = set()


def requested_path(environ: Mapping[str, str] | None = None) -> str:
    """The path :data:`SWITCH` asks for (``avx2`` when unset); :class:`ConfigError` on any
    other value."""
    env = os.environ if environ is None else environ
    value = env.get(SWITCH, "avx2").strip().lower() or "avx2"
    if value not in PATHS:
        raise ConfigError(f"{SWITCH}={env.get(SWITCH)!r}; expected one of {PATHS}")
    return value


def pin_cpu_path(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Set each variable of :data:`PINNED_ENV` that is not set yet, unless :data:`SWITCH` is
    ``native``; return the names it set. For this process (``environ`` left out) it also sets
    PyTorch's thread count to :data:`PINNED_THREADS`. Called when ``siu_lib`` is imported: the
    variables are read when torch runs its first operation, so it must come before that (the Makefile,
    the test suite and the notebooks' kernels also get them from the environment). Warns when
    torch was imported before, since its path may be fixed already; :func:`current_path` tells
    which one is in use."""
    env = os.environ if environ is None else environ
    if requested_path(env) == "native":
        return []
    names = [k for k in PINNED_ENV if k not in env]
    for k in names:
        env[k] = PINNED_ENV[k]
    if environ is None:
        _SET_HERE.update(names)
        if names and "torch" in sys.modules:
            warnings.warn("torch was imported before siu_lib: its CPU code path may not be the "
                          "pinned one; import siu_lib first (siu_lib.cpu.current_path() tells)",
                          stacklevel=2)
        import torch  # it reads the variables above at its first operation, not on import

        torch.set_num_threads(PINNED_THREADS)
    return names


def current_path() -> str:
    """``avx2`` when this process runs the pinned path (every variable of :data:`PINNED_ENV`
    has its pinned value, PyTorch reports :data:`PINNED_CAPABILITY` and runs
    :data:`PINNED_THREADS` threads), else ``native`` (the pin was switched off, a variable was
    set otherwise, the thread count was changed, or the CPU has no AVX2)."""
    import torch

    env_ok = all(os.environ.get(k, "").lower() == v.lower() for k, v in PINNED_ENV.items())
    return ("avx2" if env_ok and torch.backends.cpu.get_cpu_capability() == PINNED_CAPABILITY
            and torch.get_num_threads() == PINNED_THREADS else "native")


def cpu_path_info() -> dict[str, Any]:
    """The code path of this process, for the provenance: ``path`` (:func:`current_path`),
    ``requested`` (:data:`SWITCH`), ``capability`` (PyTorch's), and each variable of
    :data:`PINNED_ENV` with its value (``None`` when unset) and where it was set: ``siu_lib``
    (by :func:`pin_cpu_path` in this process) or ``environment`` (before the process started:
    by the Makefile, which sets the pinned values, or by the user, whose value wins)."""
    import torch

    env = {k: {"value": os.environ.get(k),
               "set_by": None if k not in os.environ else ("siu_lib" if k in _SET_HERE else "environment")}
           for k in PINNED_ENV}
    return {"path": current_path(), "requested": requested_path(),
            "capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "env": env}


# --------------------------------------------------------------------------------------------
# The cross-CPU canary
# --------------------------------------------------------------------------------------------

#: the canary's fixed run: model, data and optimiser sizes (changing any value needs a new
#: golden file)
CANARY = {"seed": 0, "steps": 40, "batch": 8, "seq": 24, "vocab": 128, "hidden": 64,
          "layers": 2, "heads": 2, "image_size": 32, "patch": 8, "lr": 3e-3, "threads": 2}


def canary_run(spec: Mapping[str, Any] = CANARY) -> dict[str, Any]:
    """A short, fixed training run of a real ``LlavaForConditionalGeneration`` (CLIP vision
    tower, Llama language model) on random images and token ids drawn from ``spec["seed"]``:
    ``spec["steps"]`` AdamW steps on the language-model loss, on ``spec["threads"]`` threads.

    Returns the loss of every step, the sum of the absolute values of the final weights (in
    float64) and the SHA-256 of their bytes. Every operation the chain relies on runs: the
    patch convolution, attention, layer norms, matrix products, cross-entropy and AdamW."""
    import hashlib

    import torch
    from transformers import (CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration)

    s = dict(spec)
    threads = torch.get_num_threads()
    torch.set_num_threads(s["threads"])
    try:
        torch.manual_seed(s["seed"])
        image_token = s["vocab"] - 1
        n_patches = (s["image_size"] // s["patch"]) ** 2
        config = LlavaConfig(
            vision_config=CLIPVisionConfig(hidden_size=s["hidden"], intermediate_size=2 * s["hidden"],
                                           num_hidden_layers=s["layers"], num_attention_heads=s["heads"],
                                           image_size=s["image_size"], patch_size=s["patch"]),
            text_config=LlamaConfig(vocab_size=s["vocab"], hidden_size=s["hidden"],
                                    intermediate_size=2 * s["hidden"], num_hidden_layers=s["layers"],
                                    num_attention_heads=s["heads"], num_key_value_heads=s["heads"],
                                    max_position_embeddings=2 * (s["seq"] + n_patches)),
            image_token_index=image_token, vision_feature_select_strategy="default",
            vision_feature_layer=-1)
        model = LlavaForConditionalGeneration(config)
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=s["lr"])
        g = torch.Generator().manual_seed(s["seed"])
        pixels = torch.randn(s["batch"], 3, s["image_size"], s["image_size"], generator=g)
        text = torch.randint(0, image_token, (s["batch"], s["seq"]), generator=g)
        ids = torch.cat([torch.full((s["batch"], n_patches), image_token), text], dim=1)
        labels = torch.cat([torch.full((s["batch"], n_patches), -100), text], dim=1)
        losses = []
        for _ in range(s["steps"]):
            out = model(input_ids=ids, pixel_values=pixels, labels=labels)
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
            losses.append(out.loss.item())
        with torch.no_grad():
            weights = [p.detach().contiguous() for p in model.parameters()]
            abs_sum = float(sum(w.double().abs().sum() for w in weights))
            digest = hashlib.sha256()
            for w in weights:
                digest.update(w.numpy().tobytes())
        return {"spec": s, "losses": losses, "weight_abs_sum": abs_sum, "weight_sha256": digest.hexdigest()}
    finally:
        torch.set_num_threads(threads)


#: relative tolerance of :func:`compare_canary` on every loss and on the weights' absolute sum:
#: about one float32 rounding step (2**-24 = 6e-8). On the pinned path the run is bit-identical
#: from one machine to the next, so any tolerance would do; another code path moves the losses
#: by more than this within a few steps (``docs/decisions.md`` has the measured sizes)
CANARY_RTOL = 1e-7


def compare_canary(measured: Mapping[str, Any], golden: Mapping[str, Any],
                   rtol: float = CANARY_RTOL) -> list[str]:
    """The differences between two :func:`canary_run` results, as readable lines (empty when
    they agree): a different spec, every step whose loss differs by more than ``rtol``
    (relative), and the weights' absolute sum beyond ``rtol``. The largest relative loss
    difference is always reported when there is any."""
    if dict(measured["spec"]) != dict(golden["spec"]):
        return [f"the canary's spec differs from the golden file's: {dict(measured['spec'])} vs "
                f"{dict(golden['spec'])}"]
    problems = []
    rel = [abs(a - b) / max(abs(b), 1e-12) for a, b in zip(measured["losses"], golden["losses"])]
    bad = [i for i, r in enumerate(rel) if r > rtol]
    if bad:
        worst = max(range(len(rel)), key=rel.__getitem__)
        problems.append(f"{len(bad)} of {len(rel)} losses differ by more than {rtol:g} (first at step "
                        f"{bad[0]}; largest relative difference {rel[worst]:.3g} at step {worst}: "
                        f"{measured['losses'][worst]!r} vs {golden['losses'][worst]!r})")
    w_rel = abs(measured["weight_abs_sum"] - golden["weight_abs_sum"]) / abs(golden["weight_abs_sum"])
    if w_rel > rtol:
        problems.append(f"the final weights' absolute sum differs by {w_rel:.3g} (relative): "
                        f"{measured['weight_abs_sum']!r} vs {golden['weight_abs_sum']!r}")
    return problems
