"""The embedded model's tokenizer: byte-level BPE trained on the synthetic world's text."""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerFast

from ..errors import ConfigError
from ..models import IMAGE_TOKEN


#: Special tokens of the embedded tokenizer, in id order (ids 0..4).
SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>", IMAGE_TOKEN)


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
