"""The Hugging Face side of every model: load any LLaVA-family checkpoint, wrap it with LoRA,
speak its chat format and batch examples for it.

The embedded default (:mod:`siu_lib.embedded`) and a real LLaVA-1.5 both go through these
functions, so unlearning, generation and metrics run one code path for both.

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
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import torch
from PIL import Image
from transformers import (
    AutoConfig,
    AutoModelForImageTextToText,
    AutoProcessor,
    LlavaForConditionalGeneration,
    PreTrainedModel,
    ProcessorMixin,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

from .errors import ConfigError, DataFormatError, ModelLoadError, SIUError
from .progress import silence_libraries

if TYPE_CHECKING:  # peft is an optional dependency of the loader only
    import peft

logger = logging.getLogger(__name__)
silence_libraries()  # no weight-loading bars where SIU_PROGRESS=off (executed notebooks)

#: Label value ignored by the cross-entropy loss (prompt, image-feature and padding positions).
IGNORE_INDEX = -100
#: The placeholder token the processor expands into one token per image-feature position.
IMAGE_TOKEN = "<image>"

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




# --------------------------------------------------------------------------------------------
# The embedded model
# --------------------------------------------------------------------------------------------












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
    return sorted(i for i in ids - special if is_text_piece(tokenizer, i))


def is_text_piece(tokenizer: Any, token_id: int) -> bool:
    """Whether a token carries text: it decodes to more than whitespace and word-prefix marks
    (SentencePiece's "▁", byte-level BPE's "Ġ"). The lone space piece a tokenizer emits before a
    word it has no joined piece for is not."""
    return bool(tokenizer.decode([token_id]).strip(" \u2581\u0120\t\n"))


def collate_examples(
    processor: ProcessorMixin, examples: Sequence[Example], max_length: int | None = None,
    spans: Sequence[str | tuple[tuple[int, int], ...] | None] | None = None,
) -> dict[str, torch.Tensor]:
    """Turn examples into one model batch with answer-only labels, left-padded.

    Returns ``input_ids`` and ``attention_mask`` ``[B, L]``, ``labels`` ``[B, L]`` (the token id
    on answer tokens, including the final eos; ``-100`` on prompt, image-feature and padding
    positions), and ``pixel_values`` ``[n_images, 3, H, W]`` for the rows that have an image, in
    row order (plus any other image input the processor produces). Rows with and without an
    image may be mixed. Labels are placed after the processor expanded ``<image>``, by
    tokenising the prompt and the prompt+answer through the processor. ``max_length`` cuts each
    row's answer on the right; a prompt that does not fit raises :class:`ConfigError`.

    With ``spans`` (one per example: a piece of its answer, a tuple of ``(start, end)``
    character intervals of its answer, or ``None``), the batch also holds
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
    prompts, answers, fulls = [], [], []
    images = [ex.image for ex in examples if ex.image is not None]
    for ex in examples:
        prompt, answer = format_example(processor, ex.question, ex.answer, ex.image is not None)
        prompts.append(prompt)
        answers.append(answer)
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
            mask = answer_span_mask(full_enc["offset_mapping"][i][kept], labels != IGNORE_INDEX,
                                    answers[i], spans[i])
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
                     span: str | tuple[tuple[int, int], ...] | None) -> torch.Tensor:
    """One row of K_S: 0 at the ``answer_positions`` whose characters overlap ``span`` inside
    ``answer``, 1 elsewhere (all 1 when ``span`` is ``None``). ``span`` may also be a tuple of
    ``(start, end)`` character intervals of ``answer`` (each occurrence of a name, say): every
    position overlapping one of them is 0 (an empty tuple masks nothing).

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
    text_end = int(offsets[:, 1].max())
    begin, stop = offsets[:, 0], offsets[:, 1]
    answer_start = text_end - len(answer)
    if isinstance(span, tuple):
        for start, end in span:
            if not 0 <= start < end <= len(answer):
                raise DataFormatError(f"interval ({start}, {end}) is not inside the answer {answer!r}")
            hit = (answer_positions & (begin < answer_start + end) & (stop > answer_start + start)
                   & (stop > begin))
            mask[hit] = 0
        return mask
    if not span or span not in answer:
        raise DataFormatError(f"mask span {span!r} is not in the answer {answer!r}")
    start = answer_start + answer.index(span)
    end = start + len(span)
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
# The original model inside a LoRA-wrapped one
# --------------------------------------------------------------------------------------------

class AdaptersDisabled:
    """The original model M0 seen through a LoRA-wrapped (peft) model, without a second copy of
    its weights: every forward pass and every ``generate`` runs inside the model's
    ``disable_adapter()`` (the adapters, and a trained projector kept by ``modules_to_save``,
    switched off), every other attribute is the wrapped model's. It stands in for M0 wherever
    the evaluation and the attacks call the original model."""

    def __init__(self, model: Any) -> None:
        if not hasattr(model, "disable_adapter"):
            raise ConfigError(f"AdaptersDisabled needs a peft model with adapters, got {type(model).__name__}")
        self._model = model

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._model.disable_adapter():
            return self._model(*args, **kwargs)

    forward = __call__

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        """``generate`` of the model with its adapters disabled."""
        with self._model.disable_adapter():
            return self._model.generate(*args, **kwargs)

    def eval(self) -> "AdaptersDisabled":
        """Eval mode for the wrapped model; returns this view (never the model with adapters on)."""
        self._model.eval()
        return self

    def train(self, mode: bool = True) -> "AdaptersDisabled":
        """Train mode for the wrapped model; returns this view."""
        self._model.train(mode)
        return self

    def to(self, *args: Any, **kwargs: Any) -> "AdaptersDisabled":
        """Move the wrapped model; returns this view."""
        self._model.to(*args, **kwargs)
        return self

    def __getattr__(self, name: str) -> Any:
        if name == "_model":  # not set yet (a copy or an unpickled instance): no recursion
            raise AttributeError(name)
        return getattr(self._model, name)
