"""The embedded model's architecture: presets and the build of a fresh
:class:`~transformers.LlavaForConditionalGeneration` (CLIP vision tower, two-layer MLP projector,
Llama language model) with its :class:`~transformers.LlavaProcessor`."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import (CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration,
                          LlavaProcessor, PreTrainedTokenizerFast)

from ..errors import ConfigError, UnknownNameError
from ..models import IMAGE_TOKEN, LLAVA_CHAT_TEMPLATE


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
    # about 2x tiny (the paper's 13B is 1.9x its 7B): a wider and deeper language model, a
    # wider vision tower, the same recipe otherwise (docs/decisions.md)
    "small": EmbeddedConfig(
        name="small",
        vision_hidden_size=128,
        vision_intermediate_size=512,
        vision_layers=2,
        vision_heads=4,
        text_hidden_size=256,
        text_intermediate_size=768,
        text_layers=5,
        text_heads=4,
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
