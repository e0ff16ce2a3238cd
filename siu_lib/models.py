"""Models: load any Hugging Face LLaVA-family checkpoint; build and pre-train the embedded one.

The embedded default (spec 01-method.md, section 6) is a real ``transformers``
:class:`~transformers.LlavaForConditionalGeneration` -- a CLIP vision tower, a two-layer MLP
projector and a Llama language model -- with a byte-level BPE tokenizer trained on the
synthetic world's text and a :class:`~transformers.LlavaProcessor`. Saved with
``save_pretrained`` it is a checkpoint folder that loads exactly like ``llava-hf/llava-1.5-7b-hf``
(``LlavaForConditionalGeneration.from_pretrained`` / ``AutoProcessor.from_pretrained`` /
``pipeline("image-text-to-text")``), so every later stage (unlearning, generation, metrics,
attacks) runs one code path for the embedded model and for a real LLaVA-1.5.

Chat format (LLaVA-1.5, "vicuna v1" without system prompt)::

    USER: <image>\\n{question} ASSISTANT: {answer}</s>      (image turn)
    USER: {question} ASSISTANT: {answer}</s>                (text-only turn)

:func:`format_prompt` and :func:`format_example` are the single place this format is produced;
they use the processor's chat template, so a real checkpoint's own template is honoured.

Training batches (:func:`collate_examples`) may mix image and text-only rows: LLaVA fills the
image-feature positions of the whole batch, in row order, from ``pixel_values`` (which holds only
the images of the rows that have one), so a mixed batch is exactly equivalent to its rows run one
by one. Labels are computed after the processor expanded ``<image>`` into the image-feature
positions, and are ``-100`` everywhere except on the answer tokens.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import torch
from PIL import Image
from tqdm.auto import tqdm
from transformers import (
    AutoConfig,
    AutoModelForImageTextToText,
    AutoProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    ProcessorMixin,
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

from siu_lib.errors import ConfigError, DataFormatError, ModelLoadError, SIUError, UnknownNameError

if TYPE_CHECKING:  # peft is an optional dependency of the loader only
    import peft

from .cpu import PATHS as CPU_PATHS

logger = logging.getLogger(__name__)

#: Label value ignored by the cross-entropy loss (prompt, image-feature and padding positions).
IGNORE_INDEX = -100
#: The placeholder token the processor expands into one token per image-feature position.
IMAGE_TOKEN = "<image>"
#: Special tokens of the embedded tokenizer, in id order (ids 0..4).
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>", IMAGE_TOKEN)
#: Most CPU threads torch may use while pre-training (the build machine has 2 cores).
MAX_TORCH_THREADS = 2

#: LLaVA-1.5 chat template (Jinja): the llava-hf template, plus ``</s>`` after each assistant
#: answer (as in LLaVA's training data) and plain-string message contents.
LLAVA_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['content'] is string -%}"
    "{%- set parts = [{'type': 'text', 'text': message['content']}] -%}"
    "{%- else -%}{%- set parts = message['content'] -%}{%- endif -%}"
    "{%- if message['role'] == 'system' -%}"
    "{%- for part in parts if part['type'] == 'text' -%}{{ part['text'] + ' ' }}{%- endfor -%}"
    "{%- elif message['role'] == 'user' -%}"
    "{{ 'USER: ' }}"
    "{%- for part in parts if part['type'] == 'image' -%}{{ '<image>\n' }}{%- endfor -%}"
    "{%- for part in parts if part['type'] == 'text' -%}{{ part['text'] }}{%- endfor -%}"
    "{{ ' ' }}"
    "{%- else -%}"
    "{{ 'ASSISTANT: ' }}{% generation %}"
    "{%- for part in parts if part['type'] == 'text' -%}{{ part['text'] }}{%- endfor -%}"
    "{{ '</s>' }}{% endgeneration %}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'ASSISTANT:' }}{%- endif -%}"
)

ModelLike = Union[PreTrainedModel, "peft.PeftModel"]


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


def train_tokenizer(
    texts: Sequence[str], vocab_size: int = 1200, max_token_length: int = 4
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on ``texts`` and wrap it for ``transformers``.

    The tokenizer adds ``<s>`` in front of every sequence (like Llama's), pads with ``<pad>`` on
    the left, and knows ``<image>`` as a single special token (``tokenizer.image_token``).
    ``max_token_length`` caps the characters per learned token, so that invented names such as
    "Varok Delmuran" split into several sub-word tokens however often they occur, as rare names
    do in a real LLM's tokenizer. The result is deterministic for the same ``texts``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    if vocab_size <= len(SPECIAL_TOKENS) + 256:
        raise ConfigError(f"vocab_size must exceed 261 (bytes + special tokens), got {vocab_size}")
    if max_token_length < 1:
        raise ConfigError(f"max_token_length must be >= 1, got {max_token_length}")
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        max_token_length=max_token_length,
        show_progress=False,
    )
    bpe.train_from_iterator(list(texts), trainer)
    bos_id = bpe.token_to_id("<s>")
    bpe.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )


# --------------------------------------------------------------------------------------------
# The embedded model
# --------------------------------------------------------------------------------------------


@dataclass
class EmbeddedConfig:
    """Architecture of the embedded LLaVA model (CLIP vision tower + projector + Llama).

    Fields:
        name: preset name, for logs and results ("tiny", "small", or anything for a custom one).
        image_size: side in pixels of the (square) image the vision tower sees; the processor
            resizes and centre-crops every image to it. Default 48 (36 image positions; why:
            ``docs/decisions.md``).
        patch_size: side in pixels of a ViT patch; ``(image_size // patch_size) ** 2`` image-feature
            positions per image (the CLS position is dropped, strategy "default"). Default 8.
        vision_hidden_size: width of the CLIP vision transformer.
        vision_intermediate_size: MLP width of the vision transformer.
        vision_layers: number of vision transformer layers.
        vision_heads: attention heads of the vision transformer.
        text_hidden_size: width of the Llama language model.
        text_intermediate_size: SwiGLU MLP width of the language model.
        text_layers: number of language-model layers.
        text_heads: attention heads of the language model (no grouped-query attention).
        vocab_size: target BPE vocabulary size for :func:`train_tokenizer`; the model's embedding
            always has exactly ``len(tokenizer)`` rows (fewer when the training text is small).
        max_position_embeddings: longest sequence (image-feature positions + text) supported.
        vision_feature_layer: which vision hidden state feeds the projector. The default -1 (last
            layer) differs from LLaVA-1.5's -2: with only 2-3 vision layers the penultimate choice
            would leave the last layer unused.
        vision_position_scale: the vision tower's learned patch position embeddings start from
            this multiple of a 2-D sine-cosine table (:func:`sincos_2d_positions`), which gives
            every patch of one column the same column code from the first step; 0 keeps CLIP's
            random init (std 0.02, a code shared by no two patches). It helps group photos,
            where the language model must bind each name to a side; ``small`` keeps CLIP's init
            (the measurements: ``docs/decisions.md``).
    """

    name: str = "tiny"
    image_size: int = 48
    patch_size: int = 8
    vision_hidden_size: int = 96
    vision_intermediate_size: int = 384
    vision_layers: int = 2
    vision_heads: int = 4
    text_hidden_size: int = 192
    text_intermediate_size: int = 512
    text_layers: int = 4
    text_heads: int = 4
    vocab_size: int = 1200
    max_position_embeddings: int = 256
    vision_feature_layer: int = -1
    vision_position_scale: float = 2.0

    @property
    def num_image_tokens(self) -> int:
        """Number of image-feature positions one image occupies in the language model's input."""
        return (self.image_size // self.patch_size) ** 2

    def validate(self) -> None:
        """Raise :class:`ConfigError` if the sizes are inconsistent."""
        if self.image_size % self.patch_size:
            raise ConfigError(
                f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"
            )
        for width, heads, what in (
            (self.vision_hidden_size, self.vision_heads, "vision"),
            (self.text_hidden_size, self.text_heads, "text"),
        ):
            if width % heads:
                raise ConfigError(f"{what} hidden size {width} is not divisible by {heads} heads")
        if self.vision_position_scale < 0:
            raise ConfigError(
                f"vision_position_scale must be >= 0 (got {self.vision_position_scale})")
        if self.vision_position_scale and self.vision_hidden_size % 4:
            raise ConfigError(
                f"a 2-D position table (vision_position_scale {self.vision_position_scale}) "
                f"needs a vision hidden size divisible by 4, got {self.vision_hidden_size}")
        if (self.text_hidden_size // self.text_heads) % 2:
            raise ConfigError(
                f"text head dimension {self.text_hidden_size // self.text_heads} must be even "
                "(rotary position embeddings)"
            )
        if self.num_image_tokens >= self.max_position_embeddings:
            raise ConfigError(
                f"{self.num_image_tokens} image positions do not fit in "
                f"max_position_embeddings={self.max_position_embeddings}"
            )


_PRESETS: dict[str, EmbeddedConfig] = {
    # about 2.3 M parameters with a 1200-token vocabulary
    "tiny": EmbeddedConfig(name="tiny"),
    # about 4x tiny: wider language model and vision tower
    "small": EmbeddedConfig(
        name="small",
        vision_hidden_size=192,
        vision_intermediate_size=768,
        vision_layers=3,
        vision_heads=4,
        text_hidden_size=384,
        text_intermediate_size=1024,
        text_layers=4,
        text_heads=6,
        # CLIP's position init: the 2-D table slowed small's identity learning
        # (docs/decisions.md)
        vision_position_scale=0.0,
    ),
}


def embedded_config(size: str) -> EmbeddedConfig:
    """Return a copy of the named preset (``"tiny"`` or ``"small"``) of the embedded model."""
    if size not in _PRESETS:
        raise UnknownNameError(f"unknown embedded model size {size!r}; known: {sorted(_PRESETS)}")
    preset = _PRESETS[size]
    return EmbeddedConfig(**{k: getattr(preset, k) for k in preset.__dataclass_fields__})


def sincos_2d_positions(side: int, dim: int) -> torch.Tensor:
    """A 2-D sine-cosine position table for a ``side`` x ``side`` grid of patches in raster
    order (row by row, as a ViT flattens them): shape ``(side * side, dim)``.

    With ``q = dim // 4`` frequencies ``f_k = side ** (-k / q)`` (1 down to about ``1 / side``
    radians per patch), the channels of patch (row ``r``, column ``c``) are
    ``[sin(r f), cos(r f), sin(c f), cos(c f)]``. The lowest frequencies change monotonically
    across the grid, so "left half" and "right half" are linear directions of the table.
    """
    if dim % 4:
        raise ConfigError(f"a 2-D sine-cosine table needs a width divisible by 4, got {dim}")
    q = dim // 4
    freq = side ** (-torch.arange(q, dtype=torch.float32) / q)
    rows = torch.arange(side, dtype=torch.float32).repeat_interleave(side)[:, None] * freq
    cols = torch.arange(side, dtype=torch.float32).repeat(side)[:, None] * freq
    return torch.cat([rows.sin(), rows.cos(), cols.sin(), cols.cos()], dim=1)


def build_embedded_model(
    cfg: EmbeddedConfig, tokenizer: PreTrainedTokenizerFast, seed: int = 0
) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """Build a freshly initialised embedded LLaVA model and its processor.

    The model is a ``LlavaForConditionalGeneration`` (``CLIPVisionConfig`` + ``LlamaConfig``)
    whose vocabulary is ``tokenizer``'s; the processor couples a PIL-backed CLIP image processor
    (no torchvision needed) with ``tokenizer`` and the LLaVA-1.5 chat template, and expands each
    ``<image>`` into ``cfg.num_image_tokens`` placeholder tokens. Initialisation is deterministic
    in ``seed`` and does not disturb the global RNG; the vision tower's patch position
    embeddings start from ``cfg.vision_position_scale`` times :func:`sincos_2d_positions` (the
    CLS position from zero), and stay trainable.
    """
    cfg.validate()
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        raise ConfigError(f"the tokenizer has no {IMAGE_TOKEN!r} token")
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    vision_config = CLIPVisionConfig(
        hidden_size=cfg.vision_hidden_size,
        intermediate_size=cfg.vision_intermediate_size,
        num_hidden_layers=cfg.vision_layers,
        num_attention_heads=cfg.vision_heads,
        image_size=cfg.image_size,
        patch_size=cfg.patch_size,
        projection_dim=cfg.vision_hidden_size,
    )
    text_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.text_hidden_size,
        intermediate_size=cfg.text_intermediate_size,
        num_hidden_layers=cfg.text_layers,
        num_attention_heads=cfg.text_heads,
        num_key_value_heads=cfg.text_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    config = LlavaConfig(
        vision_config=vision_config,
        text_config=text_config,
        image_token_index=image_token_id,
        image_seq_length=cfg.num_image_tokens,
        vision_feature_layer=cfg.vision_feature_layer,
        vision_feature_select_strategy="default",
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(config)
    if cfg.vision_position_scale:
        side = cfg.image_size // cfg.patch_size
        with torch.no_grad():
            table = model.model.vision_tower.embeddings.position_embedding.weight
            table[0] = 0.0  # the CLS position (dropped before the projector)
            table[1:] = cfg.vision_position_scale * sincos_2d_positions(side, cfg.vision_hidden_size)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.do_sample = False

    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": cfg.image_size},
        crop_size={"height": cfg.image_size, "width": cfg.image_size},
    )
    tokenizer.padding_side = "left"
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=cfg.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS position, dropped by strategy "default"
        chat_template=LLAVA_CHAT_TEMPLATE,
        image_token=IMAGE_TOKEN,
    )
    return model, processor


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# --------------------------------------------------------------------------------------------
# Chat format
# --------------------------------------------------------------------------------------------


def _user_message(question: str, has_image: bool) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "image"}] if has_image else []
    content.append({"type": "text", "text": question})
    return {"role": "user", "content": content}


def _chat_template(processor: ProcessorMixin) -> str | None:
    template = getattr(processor, "chat_template", None)
    if template is None:
        template = getattr(getattr(processor, "tokenizer", None), "chat_template", None)
    return template


def _eos_token(processor: ProcessorMixin) -> str:
    eos = getattr(processor.tokenizer, "eos_token", None)
    if not eos:
        raise ModelLoadError(f"the tokenizer {type(processor.tokenizer).__name__} has no eos token")
    return eos


def format_prompt(processor: ProcessorMixin, question: str, has_image: bool) -> str:
    """The prompt text for one user turn, ending where the assistant's answer begins.

    With the processor's chat template (if any), else the LLaVA-1.5 format
    ``"USER: <image>\\n{question} ASSISTANT:"`` (``<image>\\n`` only when ``has_image``).
    """
    if _chat_template(processor) is not None:
        return processor.apply_chat_template(
            [_user_message(question, has_image)], add_generation_prompt=True, tokenize=False
        )
    image = f"{IMAGE_TOKEN}\n" if has_image else ""
    return f"USER: {image}{question} ASSISTANT:"


def format_example(
    processor: ProcessorMixin, question: str, answer: str, has_image: bool
) -> tuple[str, str]:
    """The (prompt text, answer text) of one training record; ``prompt + answer`` is the full text.

    The answer text is what follows the prompt in the rendered conversation, with trailing
    whitespace removed and the eos token at the end (e.g. ``" This is Ruby Tam.</s>"``).
    """
    prompt = format_prompt(processor, question, has_image)
    eos = _eos_token(processor)
    answer_text = f" {answer}"
    if _chat_template(processor) is not None:
        full = processor.apply_chat_template(
            [
                _user_message(question, has_image),
                {"role": "assistant", "content": [{"type": "text", "text": answer}]},
            ],
            tokenize=False,
        )
        if full.startswith(prompt):
            answer_text = full[len(prompt):]
    answer_text = answer_text.rstrip()
    if not answer_text.endswith(eos):
        answer_text += eos
    return prompt, answer_text


# --------------------------------------------------------------------------------------------
# Loading any LLaVA-family checkpoint
# --------------------------------------------------------------------------------------------

_LM_LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: peft ``target_modules`` regex: every linear layer of the language model (not the vision
#: tower, not the projector, not ``lm_head``) -- LLaVA's own LoRA recipe.
LANGUAGE_MODEL_LORA_TARGETS = r".*language_model.*\.(" + "|".join(_LM_LINEAR_NAMES) + r")"


def default_lora_config(
    r: int = 128, alpha: int = 256, dropout: float = 0.05, train_projector: bool = False
) -> "peft.LoraConfig":
    """A peft ``LoraConfig`` on every linear layer of the language model (spec section 4).

    Defaults are the paper's (r=128, alpha=256, dropout=0.05). With ``train_projector`` the
    multimodal projector is also trained in full (peft ``modules_to_save``), as in the paper;
    disabling the adapters then also restores the original projector.
    """
    import peft

    if r < 1 or alpha <= 0 or not 0.0 <= dropout < 1.0:
        raise ConfigError(f"invalid LoRA settings r={r}, alpha={alpha}, dropout={dropout}")
    return peft.LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=LANGUAGE_MODEL_LORA_TARGETS,
        modules_to_save=["multi_modal_projector"] if train_projector else None,
        bias="none",
    )


def _looks_like_hub_id(name: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+", name) is not None


def load_model(
    name_or_path: str | Path,
    dtype: torch.dtype | str | None = None,
    device_map: str | dict | None = None,
    lora: "peft.LoraConfig | None" = None,
) -> tuple[ModelLike, ProcessorMixin]:
    """Load an image-text (LLaVA-family) model and its processor from a folder or a hub id.

    Works for the embedded checkpoints and for any Hugging Face LLaVA checkpoint. The tokenizer
    is set to pad on the left (needed for batched generation) and given a pad token if it has
    none. With ``lora`` the model is wrapped by ``peft.get_peft_model`` (see
    :func:`default_lora_config`). Raises :class:`ModelLoadError` naming the path when the
    folder does not exist, is not an image-text model, or has no image processor.
    """
    source = str(name_or_path)
    local = Path(name_or_path)
    if not local.exists():
        if isinstance(name_or_path, Path) or not _looks_like_hub_id(source):
            raise ModelLoadError(f"model folder does not exist: {source}")
    elif not local.is_dir():
        raise ModelLoadError(f"model path is not a folder: {source}")
    try:
        config = AutoConfig.from_pretrained(source)
    except Exception as exc:  # noqa: BLE001 - any failure here means "not a checkpoint"
        raise ModelLoadError(f"cannot read a model config from {source}: {exc}") from exc
    model_type = getattr(config, "model_type", None)
    if model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES or not hasattr(
        config, "vision_config"
    ):
        raise ModelLoadError(
            f"{source} is not an image-text model (model_type={model_type!r}); "
            "a LLaVA-family checkpoint is needed"
        )
    try:
        processor = AutoProcessor.from_pretrained(source)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"cannot load a processor from {source}: {exc}") from exc
    if getattr(processor, "image_processor", None) is None:
        raise ModelLoadError(
            f"the processor of {source} ({type(processor).__name__}) has no image processor"
        )
    if getattr(processor, "tokenizer", None) is None:
        raise ModelLoadError(f"the processor of {source} has no tokenizer")
    processor.tokenizer.padding_side = "left"
    if processor.tokenizer.pad_token is None:
        tokenizer = processor.tokenizer
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token

    kwargs: dict[str, Any] = {}
    if dtype is not None:
        if isinstance(dtype, str) and dtype != "auto":
            dtype = getattr(torch, dtype)
        kwargs["dtype"] = dtype
    if device_map is not None:
        kwargs["device_map"] = device_map
    model_class = (
        LlavaForConditionalGeneration if model_type == "llava" else AutoModelForImageTextToText
    )
    try:
        model = model_class.from_pretrained(source, **kwargs)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"cannot load model weights from {source}: {exc}") from exc
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    if lora is not None:
        import peft

        model = peft.get_peft_model(model, lora)
    return model, processor


# --------------------------------------------------------------------------------------------
# Training examples and batches
# --------------------------------------------------------------------------------------------


@dataclass
class Example:
    """One question/answer record, with or without an image.

    Fields:
        image: the image the question is about (``None`` for a text-only record).
        question: the user's question, without any chat markup or ``<image>`` token.
        answer: the target answer, without chat markup or eos.
    """

    image: Image.Image | None
    question: str
    answer: str

    @property
    def has_image(self) -> bool:
        """Whether the record is image-conditioned."""
        return self.image is not None


_TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids")


def model_device_dtype(model: ModelLike) -> tuple[torch.device, torch.dtype]:
    """Device and floating dtype of ``model``'s input embeddings (where inputs must go)."""
    weight = model.get_input_embeddings().weight
    return weight.device, weight.dtype


def name_token_ids(tokenizer: Any, name: str) -> list[int]:
    """Every token id of a concept's name (K_V's masked ids): the tokenisation of the full name
    and of each of its words, with and without a leading space, in its given, lower, upper and
    title case; never a special token, and never a piece that is only whitespace or a word
    prefix (Llama's lone "▁", which a SentencePiece tokenizer emits for a leading space and
    which is part of every sentence, not of the name)."""
    variants = set()
    for text in [name] + name.split():
        for cased in (text, text.lower(), text.upper(), text.title()):
            variants.update((cased, " " + cased))
    ids: set[int] = set()
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    for v in variants:
        ids.update(tokenizer(v, add_special_tokens=False)["input_ids"])
    return sorted(i for i in ids - special if tokenizer.decode([i]).strip(" \u2581\u0120\t\n"))


def collate_examples(
    processor: ProcessorMixin, examples: Sequence[Example], max_length: int | None = None,
    spans: Sequence[str | None] | None = None,
) -> dict[str, torch.Tensor]:
    """Turn examples into one model batch with answer-only labels, left-padded.

    Returns ``input_ids`` and ``attention_mask`` ``[B, L]``, ``labels`` ``[B, L]`` (the token id
    on answer tokens, including the final eos; ``-100`` on prompt, image-feature and padding
    positions), and ``pixel_values`` ``[n_images, 3, H, W]`` for the rows that have an image, in
    row order (plus any other image input the processor produces). Rows with and without an
    image may be mixed. Labels are placed after the processor expanded ``<image>``, by
    tokenising the prompt and the prompt+answer through the processor. ``max_length`` cuts each
    row's answer on the right; a prompt that does not fit raises :class:`ConfigError`.

    With ``spans`` (one per example: a piece of its answer, or ``None``), the batch also holds
    ``token_mask`` ``[B, L]``, aligned with ``labels`` (unshifted): 0 at the answer positions
    whose characters overlap the example's span, 1 elsewhere (SIU's K_S). It is read from the
    character offsets of the same prompt+answer encoding the labels come from, so it is right
    for any fast tokenizer (byte-level BPE, or Llama's SentencePiece pieces with their "▁"
    prefix) and after ``<image>`` is expanded (:func:`answer_span_mask`).
    """
    if not examples:
        raise ConfigError("collate_examples needs at least one example")
    if spans is not None and len(spans) != len(examples):
        raise ConfigError(f"spans needs one entry per example: {len(spans)} for {len(examples)}")
    prompts, fulls = [], []
    images = [ex.image for ex in examples if ex.image is not None]
    for ex in examples:
        prompt, answer = format_example(processor, ex.question, ex.answer, ex.image is not None)
        prompts.append(prompt)
        fulls.append(prompt + answer)
    tokenizer = processor.tokenizer
    offsets = {"return_offsets_mapping": True} if spans is not None else {}
    try:
        full_enc = processor(images=images or None, text=fulls, padding=True, return_tensors="pt", **offsets)
    except NotImplementedError as err:  # a slow (Python) tokenizer has no offsets
        raise ConfigError(f"token masks need a fast tokenizer with character offsets; "
                          f"{type(tokenizer).__name__} has none ({err})") from err
    prompt_enc = processor(images=images or None, text=prompts, padding=True, return_tensors="pt")

    image_token_id = getattr(processor, "image_token_id", None)
    rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
    for i in range(len(examples)):
        kept = full_enc["attention_mask"][i].bool()
        ids = full_enc["input_ids"][i][kept]
        prompt_ids = prompt_enc["input_ids"][i][prompt_enc["attention_mask"][i].bool()]
        n_prompt = len(prompt_ids)
        if n_prompt >= len(ids) or not torch.equal(ids[:n_prompt], prompt_ids):
            raise SIUError(
                f"the prompt's tokens are not a prefix of prompt+answer for {fulls[i]!r}; "
                "cannot place the labels"
            )
        labels = ids.clone()
        labels[:n_prompt] = IGNORE_INDEX
        if image_token_id is not None:
            labels[ids == image_token_id] = IGNORE_INDEX
        mask = None
        if spans is not None:
            _, answer = format_example(processor, examples[i].question, examples[i].answer,
                                       examples[i].image is not None)
            mask = answer_span_mask(full_enc["offset_mapping"][i][kept], labels != IGNORE_INDEX,
                                    answer, spans[i])
        if max_length is not None and len(ids) > max_length:
            if n_prompt >= max_length:
                raise ConfigError(
                    f"max_length={max_length} leaves no room for the answer after a prompt of "
                    f"{n_prompt} tokens: {prompts[i]!r}"
                )
            ids, labels = ids[:max_length], labels[:max_length]
            mask = None if mask is None else mask[:max_length]
        rows.append((ids, labels, mask))

    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id
    width = max(len(ids) for ids, _, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    token_mask = torch.ones((len(rows), width), dtype=torch.long)
    for i, (ids, lab, mask) in enumerate(rows):  # left padding
        input_ids[i, width - len(ids):] = ids
        labels[i, width - len(ids):] = lab
        attention_mask[i, width - len(ids):] = 1
        if mask is not None:
            token_mask[i, width - len(ids):] = mask
    batch: dict[str, torch.Tensor] = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels,
    }
    if spans is not None:
        batch["token_mask"] = token_mask
    for key, value in full_enc.items():
        if key not in _TEXT_KEYS and key != "offset_mapping":
            batch[key] = value
    return batch


def answer_span_mask(offsets: torch.Tensor, answer_positions: torch.Tensor, answer: str,
                     span: str | None) -> torch.Tensor:
    """One row of K_S: 0 at the ``answer_positions`` whose characters overlap ``span`` inside
    ``answer``, 1 elsewhere (all 1 when ``span`` is ``None``).

    ``offsets`` ``[L, 2]`` are the character offsets of the row's tokens in the text the
    processor tokenised: the prompt, with ``<image>`` expanded into the image-feature tokens,
    followed by ``answer``. Only the prompt is changed by the expansion, so each token is placed
    by its distance from the end of that text, which ``answer`` ends. A tokenizer may attach a
    piece of the space before a word to the word's token (Llama's "▁"), so overlap is by
    characters, never by comparing token ids. :class:`DataFormatError` when ``span`` is not in
    ``answer`` or no answer token overlaps it."""
    mask = torch.ones(len(offsets), dtype=torch.long)
    if span is None:
        return mask
    if not span or span not in answer:
        raise DataFormatError(f"mask span {span!r} is not in the answer {answer!r}")
    text_end = int(offsets[:, 1].max())
    start = text_end - len(answer) + answer.index(span)
    end = start + len(span)
    begin, stop = offsets[:, 0], offsets[:, 1]
    hit = answer_positions & (begin < end) & (stop > start) & (stop > begin)
    if not hit.any():
        raise DataFormatError(f"no answer token overlaps the mask span {span!r} of {answer!r}")
    mask[hit] = 0
    return mask


def batch_to_model(batch: dict[str, torch.Tensor], model: ModelLike) -> dict[str, torch.Tensor]:
    """Move a batch to the model's device, casting floating inputs (pixels) to its dtype."""
    device, dtype = model_device_dtype(model)
    return {
        k: v.to(device=device, dtype=dtype) if torch.is_floating_point(v) else v.to(device)
        for k, v in batch.items()
    }


# --------------------------------------------------------------------------------------------
# Pre-training
# --------------------------------------------------------------------------------------------


@dataclass
class PretrainConfig:
    """Settings of :func:`pretrain` (supervised training of the embedded model on the world).

    Fields:
        steps: optimiser steps.
        batch_size: examples per step (image and text-only examples may be mixed).
        lr: peak learning rate of AdamW.
        warmup: linear warm-up length: a fraction of ``steps`` if < 1, else a number of steps.
        weight_decay: AdamW weight decay, applied to matrices only (not biases or norms).
        seed: seeds torch and the example stream's ``random.Random``.
        log_every: log the mean loss of the last ``log_every`` steps (and refresh the bar).
        schedule: learning-rate schedule after warm-up: "cosine", "linear" or "constant".
        max_grad_norm: gradient-norm clipping threshold (``None`` or 0 disables clipping).
        max_length: optional cut of each row's tokens (see :func:`collate_examples`).
        align_fraction: fraction of the steps spent in stage 1, identity alignment (naming
            the people in single and group pictures), before the full mixture; used by
            :func:`siu_lib.embedded.build_and_pretrain` to shape the world's example stream,
            in the spirit of LLaVA's stage-1 feature alignment.
        vision_lr_scale: the vision tower's and projector's learning rate is ``lr`` times this.
        bucket_batches: draw this many batches' worth of examples at a time, sort them by
            length and cut them into batches (in a shuffled order), so that rows of similar
            length share a batch and less compute goes to padding; 1 turns it off.
        bf16: run the forward pass under CPU/CUDA bfloat16 autocast (mixed precision; the
            weights and the optimiser stay float32).
        withheld: concept ids the world's example stream never shows in a picture (their
            text facts stay): the "never seen" reference model of
            :func:`siu_lib.analysis.never_seen_runs`; empty for every ordinary checkpoint.
        cpu_path: the CPU code path the checkpoint is pre-trained on (:mod:`siu_lib.cpu`):
            ``avx2``, the pinned path of every committed result, or ``native``, which gives the
            checkpoint its own cache key.
    """

    steps: int = 1000
    batch_size: int = 16
    lr: float = 2e-3
    warmup: float = 0.05
    weight_decay: float = 0.01
    seed: int = 0
    log_every: int = 50
    schedule: str = "cosine"
    max_grad_norm: float | None = 1.0
    max_length: int | None = None
    align_fraction: float = 0.0
    vision_lr_scale: float = 1.0
    bucket_batches: int = 1
    bf16: bool = False
    withheld: tuple[str, ...] = ()
    cpu_path: str = "avx2"

    def warmup_steps(self) -> int:
        """Warm-up length in optimiser steps."""
        return int(round(self.warmup * self.steps)) if self.warmup < 1 else int(self.warmup)

    def validate(self) -> None:
        """Raise :class:`ConfigError` on an out-of-range value."""
        if self.steps < 1 or self.batch_size < 1 or self.log_every < 1 or self.bucket_batches < 1:
            raise ConfigError(
                f"steps, batch_size, log_every and bucket_batches must be >= 1, got "
                f"{self.steps}, {self.batch_size}, {self.log_every}, {self.bucket_batches}"
            )
        if self.lr <= 0 or self.warmup < 0 or self.weight_decay < 0:
            raise ConfigError(
                f"lr must be > 0 and warmup, weight_decay >= 0, got "
                f"{self.lr}, {self.warmup}, {self.weight_decay}"
            )
        if not 0.0 <= self.align_fraction < 1.0 or self.vision_lr_scale <= 0:
            raise ConfigError(
                f"align_fraction must be in [0, 1) and vision_lr_scale > 0, got "
                f"{self.align_fraction}, {self.vision_lr_scale}"
            )
        if self.schedule not in _SCHEDULES:
            raise UnknownNameError(
                f"unknown schedule {self.schedule!r}; known: {sorted(_SCHEDULES)}"
            )
        if isinstance(self.withheld, str) or len(set(self.withheld)) != len(self.withheld):
            raise ConfigError(f"withheld must be a tuple of distinct concept ids, got {self.withheld!r}")
        if self.cpu_path not in CPU_PATHS:
            raise ConfigError(f"cpu_path must be one of {CPU_PATHS}, got {self.cpu_path!r}")


_SCHEDULES: dict[str, Callable[..., Any]] = {
    "cosine": lambda opt, warm, total: get_cosine_schedule_with_warmup(opt, warm, total),
    "linear": lambda opt, warm, total: get_linear_schedule_with_warmup(opt, warm, total),
    "constant": lambda opt, warm, total: get_constant_schedule_with_warmup(opt, warm),
}

ExampleStream = Union[Callable[[random.Random], Example], Iterable[Example]]


def _example_length(ex: Example) -> tuple[bool, int]:
    """A sort key that orders examples by their (approximate) token length."""
    return (ex.image is not None, len(ex.question) + len(ex.answer))


def _example_batches(
    stream: ExampleStream, batch_size: int, seed: int, bucket: int = 1
) -> Iterator[list[Example]]:
    """Batches from a stream; with ``bucket > 1``, ``bucket`` batches' worth of examples are
    drawn at once, sorted by length, cut into batches and yielded in a seeded random order."""
    if callable(stream) and not isinstance(stream, Iterator):
        rng = random.Random(seed)
        fn = stream
        iterator: Iterator[Example] = iter(lambda: fn(rng), None)
    else:
        iterator = iter(stream)
    order_rng = random.Random(f"buckets-{seed}")
    while True:
        pool = []
        for _ in range(batch_size * bucket):
            try:
                pool.append(next(iterator))
            except StopIteration:
                break
        if not pool:
            return
        if bucket > 1:
            pool.sort(key=_example_length)
        batches = [pool[i:i + batch_size] for i in range(0, len(pool), batch_size)]
        if bucket > 1:  # sorted batches would run from short to long: shuffle their order
            order_rng.shuffle(batches)
        yield from batches
        if len(pool) < batch_size * bucket:
            return


def pretrain(
    model: ModelLike,
    processor: ProcessorMixin,
    example_stream: ExampleStream,
    cfg: PretrainConfig,
    progress: bool = True,
) -> list[float]:
    """Train ``model`` on examples drawn from ``example_stream``; return the loss of every step.

    ``example_stream`` is either a callable ``(rng) -> Example`` (called ``batch_size`` times per
    step with one ``random.Random(cfg.seed)``) or an iterable of examples (training stops early,
    with a warning, when it runs out). The loss is the cross-entropy on answer tokens only.
    AdamW with warm-up then ``cfg.schedule``; deterministic given ``cfg.seed``; torch uses at most
    two CPU threads. The model is left in eval mode.
    """
    cfg.validate()
    torch.set_num_threads(max(1, min(torch.get_num_threads(), MAX_TORCH_THREADS)))
    torch.manual_seed(cfg.seed)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    groups = []
    for is_vision in (False, True):  # the vision tower + projector may get their own lr
        part = [p for n, p in named if (("vision_tower" in n or "multi_modal_projector" in n) == is_vision)]
        lr = cfg.lr * (cfg.vision_lr_scale if is_vision else 1.0)
        groups += [{"params": [p for p in part if p.ndim >= 2], "weight_decay": cfg.weight_decay, "lr": lr},
                   {"params": [p for p in part if p.ndim < 2], "weight_decay": 0.0, "lr": lr}]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr)
    scheduler = _SCHEDULES[cfg.schedule](optimizer, cfg.warmup_steps(), cfg.steps)
    batches = _example_batches(example_stream, cfg.batch_size, cfg.seed, cfg.bucket_batches)
    device_type = model_device_dtype(model)[0].type

    losses: list[float] = []
    model.train()
    # refreshed at most every 2 s: a notebook without widgets prints every refresh as a line
    bar = tqdm(total=cfg.steps, desc="pre-training", disable=not progress, mininterval=2.0)
    try:
        for step in range(cfg.steps):
            examples = next(batches, None)
            if examples is None:
                logger.warning("example stream ran out after %d of %d steps", step, cfg.steps)
                break
            batch = batch_to_model(collate_examples(processor, examples, cfg.max_length), model)
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=cfg.bf16):
                loss = model(**batch).loss
            if not torch.isfinite(loss):
                raise SIUError(f"pre-training loss is {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            bar.update(1)
            if (step + 1) % cfg.log_every == 0 or step == 0:
                window = losses[-cfg.log_every:]
                mean = sum(window) / len(window)
                bar.set_postfix(loss=f"{mean:.3f}")
                logger.info("step %d/%d loss %.4f", step + 1, cfg.steps, mean)
    finally:
        bar.close()
        model.eval()
    return losses


__all__ = [
    "IGNORE_INDEX",
    "IMAGE_TOKEN",
    "LANGUAGE_MODEL_LORA_TARGETS",
    "LLAVA_CHAT_TEMPLATE",
    "EmbeddedConfig",
    "Example",
    "PretrainConfig",
    "batch_to_model",
    "build_embedded_model",
    "collate_examples",
    "count_parameters",
    "default_lora_config",
    "embedded_config",
    "format_example",
    "format_prompt",
    "load_model",
    "model_device_dtype",
    "pretrain",
    "train_tokenizer",
]
