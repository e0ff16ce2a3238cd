"""Batched greedy generation and teacher-forced answer log-probabilities.

:func:`generate` is the only generation path of the package: every metric, attack and notebook
that needs a model's answer calls it, so the embedded model and a real LLaVA-1.5 are asked the
same way (chat format from :func:`siu_lib.models.format_prompt`, left padding, greedy decoding).
:func:`answer_logprobs` scores given answers token by token (for likelihood-based metrics and
membership-inference attacks).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from PIL import Image
from transformers import ProcessorMixin

from siu_lib.errors import ConfigError, SIUError
from siu_lib.progress import progress_bar
from siu_lib.models import (
    IGNORE_INDEX,
    Example,
    ModelLike,
    batch_to_model,
    collate_examples,
    format_prompt,
)

#: Default cap on generated tokens per answer: enough for a one-sentence answer such as
#: "This is Varok Delmuran, a painter from Osk." in the embedded tokenizer's short tokens.
DEFAULT_MAX_NEW_TOKENS = 24

GenerationItem = tuple[Image.Image | None, str]


def _greedy_config(model: ModelLike, processor: ProcessorMixin, max_new_tokens: int):
    """The model's generation config turned into plain greedy decoding."""
    config = copy.deepcopy(model.generation_config)
    config.do_sample = False
    config.num_beams = 1
    config.temperature = None
    config.top_p = None
    config.top_k = None
    config.max_new_tokens = max_new_tokens
    config.max_length = None
    tokenizer = processor.tokenizer
    if config.pad_token_id is None:
        config.pad_token_id = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )
    if config.eos_token_id is None:
        config.eos_token_id = tokenizer.eos_token_id
    return config


@contextmanager
def _eval_mode(model: ModelLike) -> Iterator[None]:
    """``model`` in eval mode for the block, its training mode restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _batches_by_modality(has_image: Sequence[bool], batch_size: int) -> list[list[int]]:
    """Indices grouped into image-only and text-only batches of at most ``batch_size``."""
    batches = []
    for flag in (True, False):
        indices = [i for i, h in enumerate(has_image) if h == flag]
        batches += [indices[s:s + batch_size] for s in range(0, len(indices), batch_size)]
    return batches


def generate(
    model: ModelLike,
    processor: ProcessorMixin,
    items: Sequence[GenerationItem],
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    batch_size: int = 16,
    progress: bool = True,
) -> list[str]:
    """Greedy answers to ``(image or None, question)`` items, in input order.

    Items with and without an image go to separate left-padded batches; each answer is the
    decoded new tokens only, special tokens skipped, whitespace stripped. The model's training
    mode is restored afterwards.
    """
    if max_new_tokens < 1 or batch_size < 1:
        raise ConfigError(
            f"max_new_tokens and batch_size must be >= 1, got {max_new_tokens}, {batch_size}"
        )
    answers: list[str | None] = [None] * len(items)
    config = _greedy_config(model, processor, max_new_tokens)
    batches = _batches_by_modality([image is not None for image, _ in items], batch_size)
    with _eval_mode(model):
        with progress_bar(total=len(items), desc="generating", progress=progress) as bar:
            for indices in batches:
                images = [items[i][0] for i in indices if items[i][0] is not None]
                prompts = [
                    format_prompt(processor, items[i][1], items[i][0] is not None) for i in indices
                ]
                enc = processor(
                    images=images or None,
                    text=prompts,
                    padding=True,
                    padding_side="left",
                    return_tensors="pt",
                )
                enc = batch_to_model(dict(enc), model)
                with torch.no_grad():
                    out = model.generate(**enc, generation_config=config)
                new_tokens = out[:, enc["input_ids"].shape[1]:]
                texts = processor.tokenizer.batch_decode(
                    new_tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False
                )
                for i, text in zip(indices, texts):
                    answers[i] = text.strip()
                bar.update(len(indices))
    return [a if a is not None else "" for a in answers]


def answer_token_stats(
    model: ModelLike,
    processor: ProcessorMixin,
    items: Sequence[tuple[Image.Image | None, str, str]],
    batch_size: int = 16,
    progress: bool = False,
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per answer token, its log-probability and the mean and standard deviation of the
    log-probability over the vocabulary (teacher forcing): ``(logprob, mu, sigma)``, each a
    float32 CPU tensor ``[T]``, with ``mu = sum_z p(z) log p(z)`` and ``sigma`` the square root
    of ``sum_z p(z) (log p(z) - mu)^2`` (what Min-K%++ normalises by). ``items`` are as in
    :func:`answer_logprobs`, whose values ``logprob`` equals."""
    return _answer_positions(model, processor, items, batch_size, progress, stats=True)


def _answer_positions(model: ModelLike, processor: ProcessorMixin,
                      items: Sequence[tuple[Image.Image | None, str, str]], batch_size: int,
                      progress: bool, stats: bool) -> list:
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    results: list = []
    with _eval_mode(model):
        for start in progress_bar(range(0, len(items), batch_size), desc="scoring", progress=progress):
            chunk = items[start:start + batch_size]
            batch = collate_examples(processor, [Example(img, q, a) for img, q, a in chunk])
            labels = batch.pop("labels")
            with torch.no_grad():
                logits = model(**batch_to_model(batch, model)).logits
            # position t's logits predict token t+1: shift by one
            logits = logits[:, :-1]  # [B, L-1, V]
            targets = labels[:, 1:].to(logits.device)  # [B, L-1]
            for row in range(len(chunk)):
                positions = targets[row] != IGNORE_INDEX
                row_logits = logits[row][positions].float()  # [T, V]
                logprobs = torch.log_softmax(row_logits, dim=-1)
                picked = logprobs.gather(-1, targets[row][positions].unsqueeze(-1)).squeeze(-1)
                if not stats:
                    results.append(picked.cpu())
                    continue
                probs = logprobs.exp()
                mu = (probs * logprobs).sum(-1)
                var = (probs * (logprobs - mu.unsqueeze(-1)).square()).sum(-1)
                results.append((picked.cpu(), mu.cpu(), var.clamp_min(0).sqrt().cpu()))
    return results


def answer_logprobs(
    model: ModelLike,
    processor: ProcessorMixin,
    items: Sequence[tuple[Image.Image | None, str, str]],
    batch_size: int = 16,
    progress: bool = False,
) -> list[torch.Tensor]:
    """Per-token log-probabilities of each answer given its prompt (teacher forcing).

    ``items`` are ``(image or None, question, answer)``. For each item returns a float32 CPU
    tensor ``[T]`` with ``log p(y_t | x, y_<t)`` for the answer tokens ``y_1..y_T`` as
    :func:`~siu_lib.models.collate_examples` labels them (the closing eos included), in input
    order. Batches may mix image and text-only items.
    """
    return _answer_positions(model, processor, items, batch_size, progress, stats=False)


def prompt_logprobs(
    model: ModelLike,
    processor: ProcessorMixin,
    items: Sequence[GenerationItem],
    batch_size: int = 16,
) -> list[torch.Tensor]:
    """Per-token log-probabilities of each question's own tokens inside its prompt, given
    everything before them (the image included): ``items`` are ``(image or None, question)``
    as :func:`generate` takes them; returns a float32 CPU tensor ``[T]`` per item, in input
    order. The question's tokens are those whose characters overlap the question in the
    prompt of :func:`~siu_lib.models.format_prompt` (read from the tokenizer's character
    offsets, which the processor reports after expanding ``<image>``; the question follows the
    image, so its distance from the prompt's end is unchanged). :class:`SIUError` when a
    question has no token of its own (a prompt format that drops it)."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    results: list[torch.Tensor] = []
    with _eval_mode(model):
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            prompts = [format_prompt(processor, q, img is not None) for img, q in chunk]
            images = [img for img, _ in chunk if img is not None]
            enc = processor(images=images or None, text=prompts, padding=True, return_tensors="pt",
                            return_offsets_mapping=True)
            offsets = enc.pop("offset_mapping")
            with torch.no_grad():
                logits = model(**batch_to_model(dict(enc), model)).logits
            for row, ((_, question), prompt) in enumerate(zip(chunk, prompts)):
                kept = enc["attention_mask"][row].bool()
                ids, spans = enc["input_ids"][row][kept], offsets[row][kept]
                row_logits = logits[row][kept.to(logits.device)].float()
                end = int(spans[:, 1].max())
                q_start = prompt.rfind(question)
                if q_start < 0:
                    raise SIUError(f"the prompt {prompt!r} does not contain the question {question!r}")
                lo, hi = end - (len(prompt) - q_start), end - (len(prompt) - q_start - len(question))
                mine = [t for t in range(1, len(ids)) if spans[t, 0] < hi and spans[t, 1] > lo
                        and spans[t, 1] > spans[t, 0]]
                if not mine:
                    raise SIUError(f"no token of the question {question!r} found in its prompt")
                logprobs = torch.log_softmax(row_logits[[t - 1 for t in mine]], dim=-1)
                results.append(logprobs.gather(-1, ids[mine].to(logprobs.device).unsqueeze(-1)).squeeze(-1).cpu())
    return results


__all__ = ["DEFAULT_MAX_NEW_TOKENS", "answer_logprobs", "answer_token_stats", "generate", "prompt_logprobs"]
