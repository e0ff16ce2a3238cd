"""Losses of SIU and its baselines, as pure functions of tensors.

Reference: Li et al., "Single Image Unlearning: Efficient Machine Unlearning in Multimodal
Large Language Models", NeurIPS 2024 (arXiv 2405.12523), "Dual Masked KL-divergence Loss";
the project's decisions are in ``spec/01-method.md`` sections 3 and 5.

Conventions shared by every function
------------------------------------
- ``logits`` (B, L, V): raw outputs of the trained model Mθ over the *full* sequence, i.e.
  positions of the system prompt, the user turn, the image features and the padding included.
  ``ref_logits`` (B, L, V): the same from the frozen original model M0; always detached here.
- ``labels`` (B, L) int: the target token id at answer positions and ``IGNORE_INDEX`` (-100)
  everywhere else, **unshifted** as in Hugging Face: ``labels[b, t]`` is the token at
  position t. Only answer positions (``labels != -100``) ever contribute to a loss.
- **Next-token shift, done by every function:** the distribution at position t-1 predicts
  ``labels[:, t]``. The logits at the last position predict nothing and are never used.
- ``token_mask`` (B, L) is aligned with ``labels`` (unshifted): K_S(t) = ``token_mask[:, t]``
  decides whether the prediction of ``labels[:, t]`` enters the KL (nonzero = yes).
- ``vocab_mask`` (V,) bool or float: K_V(v), 0 on the token ids of the concept's name.
- Reductions are token-level means over the whole batch (every answer token weighs the same,
  whatever its sequence's length), like Hugging Face's causal-LM loss. With gradient
  accumulation each micro-batch is normalised by its own token count. A batch with nothing
  to average over gives a zero that is still connected to ``logits`` (its gradient is zero).
- fp16/bf16 logits are upcast to float32 before the log-softmax; float64 stays float64.

These functions avoid the three defects of the authors' released code: the masks live in the
same (unshifted, image-expanded) positions as ``labels``, the shift is applied, and the KL is
averaged over answer positions only, never over the prompt or the padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from siu_lib.errors import ConfigError

IGNORE_INDEX = -100

__all__ = [
    "IGNORE_INDEX",
    "answer_ce",
    "sequence_logprob",
    "sequence_mean_logprob",
    "dmk_loss",
    "kl_loss",
    "ga_loss",
    "npo_loss",
    "joint_loss",
]


# ----------------------------------------------------------------------------- helpers


def _check(logits: Tensor, labels: Tensor, **others: Tensor | None) -> None:
    """Raise ConfigError unless logits is (B, L, V), labels (B, L) and ``others`` match."""
    if logits.dim() != 3:
        raise ConfigError(f"logits must be (B, L, V), got shape {tuple(logits.shape)}")
    B, L, V = logits.shape
    expected = {"labels": (B, L), "ref_logits": (B, L, V), "token_mask": (B, L), "vocab_mask": (V,)}
    for name, tensor in {"labels": labels, **others}.items():
        if tensor is not None and tuple(tensor.shape) != expected[name]:
            raise ConfigError(
                f"{name} has shape {tuple(tensor.shape)} but logits {tuple(logits.shape)} "
                f"require {expected[name]}"
            )


def _float(x: Tensor) -> Tensor:
    """Upcast fp16/bf16 to float32 (keeps float32/float64 as they are)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _answer_logprobs(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Shifted per-position log-prob of the label and the answer mask, both (B, L-1)."""
    logits, labels = logits[:, :-1], labels[:, 1:].long()  # position t-1 predicts labels[:, t]
    is_answer = labels != IGNORE_INDEX  # (B, L-1)
    logp = F.log_softmax(_float(logits), dim=-1)  # (B, L-1, V)
    token_logp = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, L-1)
    return token_logp.masked_fill(~is_answer, 0.0), is_answer


# ----------------------------------------------------------------------------- CE / GA


def sequence_logprob(logits: Tensor, labels: Tensor) -> Tensor:
    """Sum of the answer tokens' log-probabilities per sequence: log πθ(y | x).

    log πθ(y|x) = Σ_t log pθ(y_t | x, y<t)   over answer positions t (labels != -100)

    Shapes: logits (B, L, V), labels (B, L) -> (B,). A row without answer tokens gives 0.
    """
    _check(logits, labels)
    token_logp, _ = _answer_logprobs(logits, labels)
    return token_logp.sum(-1)


def sequence_mean_logprob(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean of the answer tokens' log-probabilities per sequence: log πθ(y|x) / T.

    Shapes: logits (B, L, V), labels (B, L) -> (B,). A row without answer tokens gives 0.
    """
    _check(logits, labels)
    token_logp, is_answer = _answer_logprobs(logits, labels)
    return token_logp.sum(-1) / is_answer.sum(-1).clamp(min=1)


def answer_ce(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy on answer tokens only (SIU's CE term; the PO and retain loss).

    CE = − (1/N) Σ_{b,t} log pθ(y_{b,t} | x_b, y_{b,<t})

    where (b, t) runs over the N answer tokens of the whole batch (token-level mean, as
    ``F.cross_entropy(..., ignore_index=-100)`` on the shifted tensors).
    Shapes: logits (B, L, V), labels (B, L) -> scalar. No answer token gives 0 (not NaN).
    """
    _check(logits, labels)
    token_logp, is_answer = _answer_logprobs(logits, labels)
    return -token_logp.sum() / is_answer.sum().clamp(min=1)


def ga_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Gradient-ascent objective, to be *minimised*: GA = − CE (answer tokens only).

    Minimising it lowers the likelihood of the forget answers (the paper's GA baseline, on
    the records where M0 names the concept). Shapes: as :func:`answer_ce` -> scalar.
    """
    return -answer_ce(logits, labels)


# ----------------------------------------------------------------------------- DMK / KL


def dmk_loss(
    logits: Tensor,
    ref_logits: Tensor,
    labels: Tensor,
    token_mask: Tensor,
    vocab_mask: Tensor,
    renormalize: bool = False,
) -> Tensor:
    """Dual Masked KL-divergence KL(p0 ‖ pθ) of SIU.

    DMK = Σ_t K_S(t) · Σ_v K_V(v) · p0(v|x,y<t) · [log p0(v|x,y<t) − log pθ(v|x,y<t)]
          ───────────────────────────────────────────────────────────────────────────
                                         Σ_t K_S(t)

    t runs over the answer positions (labels != -100) of the *whole batch*; the denominator
    is the number of KL-active answer positions of the batch (token-level mean, like
    :func:`answer_ce`). K_S(t) = token_mask != 0 (0 inside the record's mask span, whose
    tokens contradict M0); K_V(v) = vocab_mask != 0 (0 on the concept's name ids, so M0's
    high probability of the name exerts no pull). p0 is not renormalised by default (the
    paper's formula); ``renormalize=True`` replaces p0 and pθ by their restrictions to the
    kept vocabulary {v : K_V(v) = 1}, each renormalised to sum to 1 there.

    Shapes: logits, ref_logits (B, L, V); labels, token_mask (B, L) unshifted;
    vocab_mask (V,) -> scalar. No KL-active position gives a zero connected to ``logits``.
    """
    _check(logits, labels, ref_logits=ref_logits, token_mask=token_mask, vocab_mask=vocab_mask)
    keep = (vocab_mask != 0).to(logits.device)  # (V,) K_V
    if renormalize and not keep.any():
        raise ConfigError("renormalize=True needs a vocab_mask that keeps at least one id")
    # Shift, then keep only the KL-active answer positions: (N, V) rows.
    active = (labels[:, 1:] != IGNORE_INDEX) & (token_mask[:, 1:] != 0)  # (B, L-1)
    logp = F.log_softmax(_float(logits[:, :-1][active]), dim=-1)  # (N, V) log pθ
    logp0 = F.log_softmax(_float(ref_logits.detach()[:, :-1][active]), dim=-1)  # (N, V) log p0
    if renormalize:  # log p(v) − log Σ_{u kept} p(u): the distribution restricted to K_V = 1
        logp = logp - logp.masked_fill(~keep, float("-inf")).logsumexp(-1, keepdim=True)
        logp0 = logp0 - logp0.masked_fill(~keep, float("-inf")).logsumexp(-1, keepdim=True)
    kl = (keep * logp0.exp() * (logp0 - logp)).sum(-1)  # (N,) Σ_v K_V p0 (log p0 − log pθ)
    return kl.sum() / max(kl.numel(), 1)


def kl_loss(logits: Tensor, ref_logits: Tensor, labels: Tensor) -> Tensor:
    """Plain KL(p0 ‖ pθ) over all answer positions: :func:`dmk_loss` with K_S = K_V = 1.

    KL = (1/N) Σ_t Σ_v p0(v|x,y<t) [log p0(v|x,y<t) − log pθ(v|x,y<t)]   (N answer tokens)

    The regulariser of the GA+KL baseline and of the "plain KL" ablation.
    Shapes: logits, ref_logits (B, L, V); labels (B, L) -> scalar.
    """
    _check(logits, labels, ref_logits=ref_logits)
    token_mask = torch.ones_like(labels)
    vocab_mask = torch.ones(logits.shape[-1], dtype=torch.bool, device=logits.device)
    return dmk_loss(logits, ref_logits, labels, token_mask, vocab_mask)


# ----------------------------------------------------------------------------- NPO


def npo_loss(logits: Tensor, ref_logits: Tensor, labels: Tensor, beta: float = 0.1) -> Tensor:
    """Negative Preference Optimisation (Zhang et al., 2024, arXiv 2404.05868), to minimise.

    NPO = − (2/β) · mean_b log σ( −β · [log πθ(y_b|x_b) − log π0(y_b|x_b)] )

    with log π(y|x) the *summed* answer-token log-probability of sequence b
    (:func:`sequence_logprob`). At πθ = π0 it equals (2/β)·log 2 and its gradient is that of
    GA on the sequence log-likelihood; it saturates as πθ(y|x) falls below π0(y|x).
    Shapes: logits, ref_logits (B, L, V); labels (B, L) -> scalar (mean over the B sequences).
    """
    if not beta > 0:
        raise ConfigError(f"npo_loss needs beta > 0, got {beta}")
    _check(logits, labels, ref_logits=ref_logits)
    log_ratio = sequence_logprob(logits, labels) - sequence_logprob(ref_logits.detach(), labels)
    return -(2.0 / beta) * F.logsigmoid(-beta * log_ratio).mean()


# ----------------------------------------------------------------------------- SIU objective


def joint_loss(ce: Tensor, dmk: Tensor, alpha: float = 0.9, beta: float = 0.75) -> Tensor:
    """SIU's training objective L = α·CE + β·DMK (paper defaults α = 0.9, β = 0.75)."""
    return alpha * ce + beta * dmk
