"""SIU's masks with a Llama-style SentencePiece tokenizer, as LLaVA-1.5 has.

LLaVA-1.5's tokenizer is Llama's: BPE pieces that carry the space before a word as a "▁"
prefix, with byte fallback. Text tokenised alone gains a "▁" in front, and a word
the vocabulary lacks can leave a lone "▁" piece. The tokenizer here is built in the test with
those settings (a ``tokenizers`` model wrapped as ``LlamaTokenizerFast``, LLaVA-1.5's chat
template), and the masks are checked token by token after ``<image>`` expansion.
"""

from __future__ import annotations

import pytest
import torch
from conftest import mask_records

from siu_lib import losses
from siu_lib.finetune_data import FTRecord
from siu_lib.models import format_example
from siu_lib.embedded import EmbeddedConfig, build_embedded_model
from siu_lib.train import collate_records, name_token_ids, vocab_mask_for
from siu_lib.world import World, WorldConfig

PIECE = "\u2581"
WORLD = WorldConfig(world_seed=3, n_concepts=4, images_per_concept=3, image_size=32)
MODEL = EmbeddedConfig(
    name="micro-sp", image_size=32, patch_size=8, vision_hidden_size=32, vision_intermediate_size=64,
    vision_layers=1, vision_heads=2, text_hidden_size=32, text_intermediate_size=64,
    text_layers=1, text_heads=2, vocab_size=600, max_position_embeddings=160)


def llama_style_tokenizer(texts: list[str], vocab_size: int = 600):
    """A SentencePiece-style BPE tokenizer with the settings of Llama-2's ``tokenizer.json``
    (the one LLaVA-1.5's Vicuna has): a normaliser that prepends "▁" and turns every space into
    "▁", no pre-tokeniser, byte fallback, ``<s>`` in front, ``<unk>``/``<s>``/``</s>`` at ids
    0-2 and ``<image>`` added; wrapped as ``LlamaTokenizerFast``. Its merges are learned within
    words (Metaspace splitting while training), as SentencePiece learns them."""
    from tokenizers import (Tokenizer, decoders, models, normalizers, pre_tokenizers, processors,
                            trainers)
    from transformers import LlamaTokenizerFast

    sp = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    sp.pre_tokenizer = pre_tokenizers.Metaspace(replacement=PIECE, prepend_scheme="always", split=True)
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    sp.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                      max_token_length=5, show_progress=False))
    sp.pre_tokenizer = None
    sp.normalizer = normalizers.Sequence([normalizers.Prepend(PIECE), normalizers.Replace(" ", PIECE)])
    sp.decoder = decoders.Sequence([decoders.Replace(PIECE, " "), decoders.ByteFallback(),
                                    decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    sp.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                      special_tokens=[("<s>", 1)])
    return LlamaTokenizerFast(tokenizer_object=sp, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                              pad_token="<unk>", extra_special_tokens={"image_token": "<image>"},
                              padding_side="left")


@pytest.fixture(scope="module")
def sp_world():
    world = World(WORLD)
    tok = llama_style_tokenizer(list(world.texts()))
    model, processor = build_embedded_model(MODEL, tok)
    return world, model, processor


def test_the_tokenizer_is_sentencepiece_like(sp_world):
    """The properties that break a mask built from the answer tokenised alone."""
    _, _, processor = sp_world
    tok = processor.tokenizer
    # a space is a "▁" prefix of the next word's piece, and text tokenised alone gains one more
    def joined(text: str) -> str:
        return "".join(tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"]))

    assert joined("This is") == f"{PIECE}This{PIECE}is"
    assert joined(" This is") == f"{PIECE}{PIECE}This{PIECE}is"
    in_context = joined("ASSISTANT: This is")
    assert in_context.endswith(f"{PIECE}This{PIECE}is") and f"{PIECE}{PIECE}" not in in_context
    assert "<0x3A>" in in_context  # ':' is not in the trained vocabulary: byte fallback
    # a name the vocabulary has no "▁"-word piece for leaves a lone "▁" piece
    assert tok.convert_ids_to_tokens(tok("Qzx", add_special_tokens=False)["input_ids"]) == [
        PIECE, "Q", "z", "x"]


def test_token_mask_lands_on_the_name_for_a_sentencepiece_tokenizer(sp_world):
    world, _, processor = sp_world
    tok = processor.tokenizer
    img = world.forget_image(0)
    recs = mask_records(img)
    # tokenised alone, the answer does not give the tokens the model is trained on
    _, answer = format_example(processor, recs[0].question, recs[0].answer, True)
    batch = collate_records(processor, recs)
    ids, labels, tmask = batch["input_ids"], batch["labels"], batch["token_mask"]
    answer_pos = (labels[0] != losses.IGNORE_INDEX).nonzero().flatten()
    assert tok(answer, add_special_tokens=False)["input_ids"] != labels[0, answer_pos].tolist()
    image_id = tok.convert_tokens_to_ids("<image>")
    assert int((ids[0] == image_id).sum()) == (MODEL.image_size // MODEL.patch_size) ** 2
    masked = (tmask[0] == 0).nonzero().flatten()
    # (a) exactly the name's pieces, token by token, each an answer token after the image
    pieces = tok.convert_ids_to_tokens(ids[0, masked].tolist())
    assert "".join(pieces).replace(PIECE, " ").strip() == "Jacob Campbell", pieces
    assert pieces[0].startswith(PIECE + "J")
    before, after = tok.convert_ids_to_tokens([int(ids[0, masked.min() - 1]), int(ids[0, masked.max() + 1])])
    assert before == f"{PIECE}is" and after == "." and tmask[0, masked.min() - 1] == 1
    assert set(masked.tolist()) < set(answer_pos.tolist())
    assert int(masked.min()) > int((ids[0] == image_id).nonzero().max())
    assert torch.equal(labels[0, masked], ids[0, masked])
    # (b) the whole answer is masked but the closing eos
    ans_b = (labels[1] != losses.IGNORE_INDEX).nonzero().flatten()
    kept_b = [p for p in ans_b.tolist() if tmask[1, p] == 1]
    assert tok.convert_ids_to_tokens([int(ids[1, p]) for p in kept_b]) == ["</s>"]
    assert tok.decode(ids[1, ans_b[:-1]]).strip() == "No. Ana Bell has red hair."
    # (c) no span, nothing masked
    assert bool((tmask[2] == 1).all())


def test_vocab_mask_never_holds_a_lone_prefix_piece(sp_world):
    world, _, processor = sp_world
    tok = processor.tokenizer
    lone = tok.convert_tokens_to_ids(PIECE)
    for name in [c.name for c in world.concepts] + ["Qzx Vuq"]:
        ids = name_token_ids(tok, name)
        assert lone not in ids and ids, name
        assert all(tok.decode([i]).strip() for i in ids), name
        # every other piece of every spelling is masked
        for variant in (name, " " + name, name.lower(), " " + name.split()[-1].upper()):
            assert set(tok(variant, add_special_tokens=False)["input_ids"]) - {lone} <= set(ids)
    # the unknown name's tokenisation really has the lone piece, so the check above can fail
    assert lone in tok(" Qzx Vuq", add_special_tokens=False)["input_ids"]
    mask = vocab_mask_for(tok, "Qzx Vuq", len(tok))
    assert mask[lone] and not mask[name_token_ids(tok, "Qzx Vuq")].any()


def test_a_sentencepiece_batch_runs_through_the_model(sp_world):
    """The masks and labels are model inputs that the LLaVA forward pass accepts."""
    world, model, processor = sp_world
    rec = FTRecord(world.forget_image(1), "Who is in this picture?", "This is Jacob Campbell.", "a",
                   "Jacob Campbell")
    batch = collate_records(processor, [rec, rec])
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "token_mask", "is_forget")}
    with torch.no_grad():
        logits = model(**inputs).logits
    vmask = vocab_mask_for(processor.tokenizer, "Jacob Campbell", logits.shape[-1])
    dmk = losses.dmk_loss(logits, logits + 0.1, batch["labels"], batch["token_mask"], vmask)
    assert torch.isfinite(dmk) and logits.shape[:2] == batch["labels"].shape
