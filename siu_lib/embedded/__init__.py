"""The embedded default MLLM: a real ``transformers`` LLaVA that this package builds and
pre-trains on the synthetic world, so that the whole chain runs without a model hub.

It is a :class:`~transformers.LlavaForConditionalGeneration` (a CLIP vision tower, a two-layer
MLP projector and a Llama language model) with a byte-level BPE tokenizer trained on the world's
text and a :class:`~transformers.LlavaProcessor`. Saved with ``save_pretrained`` it is a
checkpoint folder that loads exactly like ``llava-hf/llava-1.5-7b-hf``
(:func:`siu_lib.models.load_model`), so unlearning, generation and metrics run one
code path for it and for a real LLaVA-1.5.

* :mod:`.tokenizer`: :func:`train_tokenizer`;
* :mod:`.model`: :class:`EmbeddedConfig`, the ``tiny`` / ``small`` presets
  (:func:`embedded_config`), :func:`build_embedded_model`;
* :mod:`.pretrain`: :class:`PretrainConfig`, :func:`pretrain`;
* :mod:`.checkpoints`: the cache (:func:`ensure_pretrained`, :func:`checkpoint_key`) and the
  pre-training time per step (:func:`pretrain_step_seconds`);
* :mod:`.knowledge`: what a checkpoint knows (:func:`evaluate_pretrained`, :func:`pretrain_table`).
"""

from .checkpoints import (PRETRAIN_BUDGET_SECONDS, build_and_pretrain, checkpoint_key, ensure_pretrained,
                          pretrain_info, pretrain_step_seconds, projected_pretrain_seconds)
from .knowledge import (KNOWLEDGE_MAX_NEW_TOKENS, KnowledgeReport, evaluate_pretrained,
                        pretrain_table, split_group_answer)
from .model import EmbeddedConfig, build_embedded_model, embedded_config, sincos_2d_positions
from .pretrain import MAX_TORCH_THREADS, PretrainConfig, pretrain
from .tokenizer import SPECIAL_TOKENS, train_tokenizer

__all__ = [
    "KNOWLEDGE_MAX_NEW_TOKENS", "MAX_TORCH_THREADS", "PRETRAIN_BUDGET_SECONDS", "SPECIAL_TOKENS",
    "EmbeddedConfig", "KnowledgeReport", "PretrainConfig", "build_and_pretrain", "build_embedded_model",
    "checkpoint_key", "embedded_config", "ensure_pretrained", "evaluate_pretrained",
    "pretrain", "pretrain_info", "pretrain_step_seconds", "pretrain_table", "projected_pretrain_seconds",
    "sincos_2d_positions", "split_group_answer", "train_tokenizer",
]
