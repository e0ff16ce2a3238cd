"""siu_lib: Single Image Unlearning (SIU, NeurIPS 2024) for multimodal LLMs, reproducible on a CPU.

Importing the package pins PyTorch's, MKL's and oneDNN's CPU code path to AVX2 before torch runs
anything (:mod:`siu_lib.cpu`), so that the same commit, profile and seed give the same numbers on
any x86-64 CPU with AVX2; ``SIU_CPU_PATH=native`` turns the pin off.
"""

from .cpu import pin_cpu_path as _pin_cpu_path

_pin_cpu_path()
