"""Tests of siu_lib.losses: hand-computed toy values, the next-token shift, the two masks,
gradients, the direction of one optimiser step, and a golden file.

Regenerate the golden file (only when a change of the numbers is intended) with
``python -m tests.test_losses`` from the repository root, and say why in the commit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from siu_lib.errors import ConfigError
from siu_lib.losses import (
    IGNORE_INDEX,
    answer_ce,
    dmk_loss,
    ga_loss,
    joint_loss,
    kl_loss,
    npo_loss,
    sequence_logprob,
    sequence_mean_logprob,
)

GOLDEN = Path(__file__).parent / "golden" / "losses.json"
X = IGNORE_INDEX


def rows(*probs_or_logits: list[float], raw: tuple[int, ...] = ()) -> torch.Tensor:
    """(1, L, V) float64 logits from one list per position: log(probs), or raw logits at `raw`."""
    out = [
        torch.tensor(r, dtype=torch.float64) if i in raw else torch.tensor(r, dtype=torch.float64).log()
        for i, r in enumerate(probs_or_logits)
    ]
    return torch.stack(out).unsqueeze(0)


def random_batch(seed: int = 0, B: int = 2, L: int = 6, V: int = 7):
    """Seeded logits, ref_logits (B, L, V) float64; labels, token_mask (B, L); vocab_mask (V,)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, L, V, generator=g).double()
    ref_logits = torch.randn(B, L, V, generator=g).double()
    labels = torch.randint(0, V, (B, L), generator=g)
    labels[0, :2] = X  # prompt
    labels[0, -1] = X  # padding
    labels[1, :3] = X  # longer prompt
    token_mask = torch.ones(B, L, dtype=torch.long)
    token_mask[0, 3] = 0  # inside the mask span
    token_mask[1, 4] = 0
    vocab_mask = torch.ones(V)
    vocab_mask[[2, 5]] = 0  # the concept's name ids
    return logits, ref_logits, labels, token_mask, vocab_mask


# ----------------------------------------------------------------------------- DMK by hand


def toy_dmk_inputs():
    """B=1, L=5, V=2. Answer labels at t=2,3,4; K_S(3)=0; wild logits where nothing is read.

    position p predicts labels[p+1]:  p=0 -> -100 (prompt), p=1 -> y_2 (active),
    p=2 -> y_3 (masked by token_mask), p=3 -> y_4 (active), p=4 -> nothing (last).
    """
    labels = torch.tensor([[X, X, 0, 1, 0]])
    token_mask = torch.tensor([[1, 1, 1, 0, 1]])
    logits = rows([30.0, -30.0], [0.5, 0.5], [0.9, 0.1], [0.25, 0.75], [30.0, -30.0], raw=(0, 4))
    ref_logits = rows([-30.0, 30.0], [0.8, 0.2], [0.1, 0.9], [0.5, 0.5], [-30.0, 30.0], raw=(0, 4))
    return logits, ref_logits, labels, token_mask


def test_dmk_hand_computed_two_token_vocab():
    logits, ref_logits, labels, token_mask = toy_dmk_inputs()
    # p=1: p0=[.8,.2], pθ=[.5,.5]:  .8 ln(.8/.5) + .2 ln(.2/.5) = .3760029 − .1832581 = .1927448
    # p=3: p0=[.5,.5], pθ=[.25,.75]: .5 ln(.5/.25) + .5 ln(.5/.75) = .3465736 − .2027326 = .1438410
    # DMK = (.1927448 + .1438410) / 2 active positions = .1682929
    kl_1 = 0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5)
    kl_3 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    expected = (kl_1 + kl_3) / 2
    got = dmk_loss(logits, ref_logits, labels, token_mask, torch.ones(2))
    assert got.item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.1682929, abs=1e-6)

    # Vocab mask on id 1 (the "name"): only the v=0 terms remain.
    # (.8 ln 1.6 + .5 ln 2) / 2 = (.3760029 + .3465736) / 2 = .3612883
    expected_masked = (0.8 * math.log(1.6) + 0.5 * math.log(2.0)) / 2
    got_masked = dmk_loss(logits, ref_logits, labels, token_mask, torch.tensor([1.0, 0.0]))
    assert got_masked.item() == pytest.approx(expected_masked, abs=1e-6)
    # bool vocab mask means the same
    got_bool = dmk_loss(logits, ref_logits, labels, token_mask, torch.tensor([True, False]))
    assert got_bool.item() == pytest.approx(expected_masked, abs=1e-6)


def test_dmk_renormalize_hand_computed():
    # B=1, L=2, V=3: one active position (p=0 predicts labels[1]); the name is id 2.
    labels = torch.tensor([[X, 1]])
    token_mask = torch.ones(1, 2)
    logits = rows([0.3, 0.3, 0.4], [1.0, 1.0, 1.0], raw=(1,))
    ref_logits = rows([0.6, 0.2, 0.2], [1.0, 1.0, 1.0], raw=(1,))
    vocab_mask = torch.tensor([1, 1, 0])
    # restricted to {0, 1}: p0 = [.6,.2]/.8 = [.75,.25], pθ = [.3,.3]/.6 = [.5,.5]
    # KL = .75 ln(.75/.5) + .25 ln(.25/.5) = .3040988 − .1732868 = .1308120
    expected = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    got = dmk_loss(logits, ref_logits, labels, token_mask, vocab_mask, renormalize=True)
    assert got.item() == pytest.approx(expected, abs=1e-6)
    # default (no renormalisation): .6 ln(.6/.3) + .2 ln(.2/.3) = .4158883 − .0810930 = .3347953
    expected_raw = 0.6 * math.log(2.0) + 0.2 * math.log(0.2 / 0.3)
    got_raw = dmk_loss(logits, ref_logits, labels, token_mask, vocab_mask)
    assert got_raw.item() == pytest.approx(expected_raw, abs=1e-6)

    # On the 2-token toy with id 1 masked, both restrictions are the point mass on id 0: KL = 0.
    logits, ref_logits, labels, token_mask = toy_dmk_inputs()
    got0 = dmk_loss(logits, ref_logits, labels, token_mask, torch.tensor([1, 0]), renormalize=True)
    assert got0.item() == pytest.approx(0.0, abs=1e-9)


# ----------------------------------------------------------------------------- the shift


def test_shift_position_t_minus_1_predicts_label_t():
    # The only answer token is at t=2 (the last position).
    g = torch.Generator().manual_seed(1)
    base = torch.randn(1, 3, 4, generator=g).double()
    labels = torch.tensor([[X, X, 2]])
    ones_t, ones_v = torch.ones(1, 3), torch.ones(4)

    # Models differ only at t-1 = 1: the KL sees it.
    logits = base.clone()
    logits[0, 1] += torch.tensor([2.0, -1.0, 0.0, 1.0], dtype=torch.float64)
    kl = kl_loss(logits, base, labels)
    assert kl.item() > 1e-3

    # Changing both models' logits at t = 2 (the last position) changes nothing.
    logits2, ref2 = logits.clone(), base.clone()
    logits2[0, 2] = torch.tensor([9.0, -9.0, 3.0, 0.0])
    ref2[0, 2] = torch.tensor([-4.0, 7.0, 1.0, 2.0])
    assert kl_loss(logits2, ref2, labels).item() == pytest.approx(kl.item(), abs=1e-12)
    for fn in (answer_ce, ga_loss, sequence_logprob):
        assert torch.allclose(fn(logits2, labels), fn(logits, labels), atol=1e-12)
    assert npo_loss(logits2, ref2, labels).item() == pytest.approx(
        npo_loss(logits, base, labels).item(), abs=1e-12
    )
    assert dmk_loss(logits2, ref2, labels, ones_t, ones_v).item() == pytest.approx(kl.item(), abs=1e-12)

    # Models that differ only at t = 2 have zero KL.
    assert kl_loss(logits2, logits, labels).item() == pytest.approx(0.0, abs=1e-12)

    # CE reads position 1: confident right there -> CE ~ 0; confident right only at 2 -> large.
    right_at_1 = torch.zeros(1, 3, 4).double()
    right_at_1[0, 1, 2] = 20.0
    right_at_2 = torch.zeros(1, 3, 4).double()
    right_at_2[0, 2, 2] = 20.0
    assert answer_ce(right_at_1, labels).item() < 1e-6
    assert answer_ce(right_at_2, labels).item() == pytest.approx(math.log(4), abs=1e-9)


# ----------------------------------------------------------------------------- KL equivalences


def test_all_ones_dmk_equals_kl_loss_equals_torch_kl_div():
    logits, ref_logits, labels, _, _ = random_batch(seed=2)
    B, L, V = logits.shape
    # independent reference: shift by hand, keep answer rows, torch's KL(target=p0 || input=pθ)
    answer = labels[:, 1:] != X
    p_theta_log = F.log_softmax(logits[:, :-1][answer], dim=-1)
    p0_log = F.log_softmax(ref_logits[:, :-1][answer], dim=-1)
    expected = F.kl_div(p_theta_log, p0_log, log_target=True, reduction="batchmean")

    dmk = dmk_loss(logits, ref_logits, labels, torch.ones(B, L), torch.ones(V))
    bool_t, bool_v = torch.ones(B, L, dtype=torch.bool), torch.ones(V, dtype=torch.bool)
    dmk_bool = dmk_loss(logits, ref_logits, labels, bool_t, bool_v)
    kl = kl_loss(logits, ref_logits, labels)
    for value in (dmk, dmk_bool, kl):
        assert value.item() == pytest.approx(expected.item(), abs=1e-10)
    assert kl_loss(ref_logits, ref_logits, labels).item() == pytest.approx(0.0, abs=1e-12)


# ----------------------------------------------------------------------------- vocab mask gradient


def test_vocab_mask_removes_the_pull_toward_p0_on_masked_ids():
    """The masked ids' reference probabilities have no influence on the DMK gradient.

    The name is ids {3, 4}. Two references agree on the kept ids and differ only in how the
    masked mass is split between 3 and 4 (0.01/0.49 vs 0.49/0.01): with the vocab mask on the
    gradient w.r.t. logits is identical; with it off it is not. (Changing one masked id's p0
    alone must move some other id's p0, since p0 sums to 1; splitting between two masked ids
    isolates the masked ids' own probabilities.)
    """
    labels = torch.tensor([[X, 0]])
    token_mask = torch.ones(1, 2)
    p_theta = [0.1, 0.2, 0.3, 0.25, 0.15]
    uniform = [0.0] * 5

    def grad(ref_probs, vocab_mask, renormalize=False):
        logits = rows(p_theta, uniform, raw=(1,)).requires_grad_(True)
        ref = rows(ref_probs, uniform, raw=(1,))
        loss = dmk_loss(logits, ref, labels, token_mask, vocab_mask, renormalize=renormalize)
        (g,) = torch.autograd.grad(loss, logits)
        return g

    ref_a = [0.3, 0.15, 0.05, 0.01, 0.49]
    ref_b = [0.3, 0.15, 0.05, 0.49, 0.01]
    name_masked = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0])
    g_a, g_b = grad(ref_a, name_masked), grad(ref_b, name_masked)
    assert torch.allclose(g_a, g_b, atol=1e-12)
    assert torch.allclose(grad(ref_a, name_masked, True), grad(ref_b, name_masked, True), atol=1e-12)

    # Closed form, from d/dz_u of −Σ_v K_V p0(v) log pθ(v):  S·pθ(u) − K_V(u)·p0(u),
    # S = Σ_v K_V p0(v) = .5. On a masked id it is S·pθ(m) ≥ 0: gradient descent only lowers
    # the name's logit; there is no −p0(m) term pulling it toward M0's probability.
    kept_p0 = torch.tensor([0.3, 0.15, 0.05, 0.0, 0.0], dtype=torch.float64)
    expected = 0.5 * torch.tensor(p_theta, dtype=torch.float64) - kept_p0
    assert torch.allclose(g_a[0, 0], expected, atol=1e-12)
    assert torch.all(g_a[0, 1:] == 0)  # the last position predicts nothing
    assert torch.all(g_a[0, 0, 3:] > 0)

    # Vocab mask off: the gradient depends on p0(3), p0(4) and pulls toward them:
    # dKL/dz_u = pθ(u) − p0(u), negative on id 4 when p0(4) = .49 > pθ(4) = .15.
    all_kept = torch.ones(5)
    g_a_off, g_b_off = grad(ref_a, all_kept), grad(ref_b, all_kept)
    assert not torch.allclose(g_a_off, g_b_off, atol=1e-3)
    pull = torch.tensor(p_theta, dtype=torch.float64) - torch.tensor(ref_a, dtype=torch.float64)
    assert torch.allclose(g_a_off[0, 0], pull, atol=1e-12)
    assert g_a_off[0, 0, 4] < 0


# ----------------------------------------------------------------------------- unread positions


def test_token_mask_zero_positions_do_not_count():
    logits, ref_logits, labels, token_mask, vocab_mask = random_batch(seed=3)
    base = dmk_loss(logits, ref_logits, labels, token_mask, vocab_mask)
    base_kl = kl_loss(logits, ref_logits, labels)
    g = torch.Generator().manual_seed(4)
    for b, t in (token_mask == 0).nonzero().tolist():
        assert labels[b, t] != X  # a genuine answer position inside the mask span
        logits2, ref2 = logits.clone(), ref_logits.clone()
        logits2[b, t - 1] += 5 * torch.randn(logits.shape[-1], generator=g).double()
        ref2[b, t - 1] -= 5 * torch.randn(logits.shape[-1], generator=g).double()
        dmk = dmk_loss(logits2, ref2, labels, token_mask, vocab_mask)
        assert dmk.item() == pytest.approx(base.item(), abs=1e-12)
        assert abs(kl_loss(logits2, ref2, labels).item() - base_kl.item()) > 1e-3  # the plain KL sees it


def test_prompt_and_padding_positions_never_contribute():
    logits, ref_logits, labels, token_mask, vocab_mask = random_batch(seed=5)

    def all_losses(lg, rf):
        return torch.stack([
            answer_ce(lg, labels),
            dmk_loss(lg, rf, labels, token_mask, vocab_mask),
            dmk_loss(lg, rf, labels, token_mask, vocab_mask, renormalize=True),
            kl_loss(lg, rf, labels),
            npo_loss(lg, rf, labels),
            *sequence_logprob(lg, labels),
            *sequence_mean_logprob(lg, labels),
        ])

    base = all_losses(logits, ref_logits)
    g = torch.Generator().manual_seed(6)
    B, L, V = logits.shape
    # position p predicts labels[:, p+1]; p = L-1 predicts nothing
    unread = [(b, p) for b in range(B) for p in range(L) if p == L - 1 or labels[b, p + 1] == X]
    assert len(unread) >= 4
    for b, p in unread:
        logits2, ref2 = logits.clone(), ref_logits.clone()
        logits2[b, p] = 50 * torch.randn(V, generator=g).double()
        ref2[b, p] = -50 * torch.randn(V, generator=g).double()
        assert torch.allclose(all_losses(logits2, ref2), base, atol=1e-12)


def test_no_active_position_gives_a_connected_zero():
    logits = torch.randn(2, 4, 5, requires_grad=True)
    ref = torch.randn(2, 4, 5)
    labels = torch.full((2, 4), X)
    labels[0, 2] = 1  # one answer token ...
    token_mask = torch.ones(2, 4)
    token_mask[0, 2] = 0  # ... inside the mask span
    dmk = dmk_loss(logits, ref, labels, token_mask, torch.ones(5))
    assert dmk.item() == 0.0 and dmk.grad_fn is not None
    dmk.backward()
    assert torch.all(logits.grad == 0)
    ce = answer_ce(logits, torch.full((2, 4), X))
    assert ce.item() == 0.0 and ce.grad_fn is not None


# ----------------------------------------------------------------------------- CE / GA


def test_answer_ce_matches_torch_cross_entropy_on_shifted_tensors():
    logits, _, labels, _, _ = random_batch(seed=7)
    V = logits.shape[-1]
    expected = F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=X)
    assert answer_ce(logits, labels).item() == pytest.approx(expected.item(), abs=1e-10)
    assert ga_loss(logits, labels).item() == pytest.approx(-expected.item(), abs=1e-10)

    # per-sequence sums and means agree with the token-level CE
    seq = sequence_logprob(logits, labels)
    n_answer = (labels[:, 1:] != X).sum(-1)
    assert seq.shape == (2,)
    assert (-seq.sum() / n_answer.sum()).item() == pytest.approx(expected.item(), abs=1e-10)
    assert torch.allclose(sequence_mean_logprob(logits, labels), seq / n_answer)

    # half-precision logits are upcast; the result is float32 and close
    ce_bf16 = answer_ce(logits.to(torch.bfloat16), labels)
    assert ce_bf16.dtype == torch.float32
    assert ce_bf16.item() == pytest.approx(expected.item(), abs=5e-2)


def test_joint_loss_paper_defaults():
    ce, dmk = torch.tensor(2.0), torch.tensor(0.4)
    assert joint_loss(ce, dmk).item() == pytest.approx(0.9 * 2.0 + 0.75 * 0.4)
    assert joint_loss(ce, dmk, alpha=1.0, beta=0.0).item() == pytest.approx(2.0)


# ----------------------------------------------------------------------------- NPO


@pytest.mark.parametrize("beta", [0.1, 1.0])
def test_npo_hand_computed_one_sequence(beta):
    # B=1, L=3, V=2; p=0 predicts y_1 = 0, p=1 predicts y_2 = 1.
    labels = torch.tensor([[X, 0, 1]])
    logits = rows([0.5, 0.5], [0.25, 0.75], [0.0, 0.0], raw=(2,))
    ref_logits = rows([0.8, 0.2], [0.4, 0.6], [0.0, 0.0], raw=(2,))
    # log πθ = ln .5 + ln .75 = ln .375 ; log π0 = ln .8 + ln .6 = ln .48
    # r = ln(.375/.48) = ln .78125 = −.2468601
    # NPO = −(2/β) ln σ(−β r) = (2/β) ln(1 + e^{β r});  β = .1 -> 20 ln(1.975616) = 13.61883
    r = math.log(0.375) - math.log(0.48)
    expected = -(2 / beta) * math.log(1 / (1 + math.exp(beta * r)))
    assert npo_loss(logits, ref_logits, labels, beta=beta).item() == pytest.approx(expected, abs=1e-6)
    assert sequence_logprob(logits, labels).item() == pytest.approx(math.log(0.375), abs=1e-9)
    # at πθ = π0 the loss is (2/β) ln 2
    at_ref = npo_loss(ref_logits, ref_logits, labels, beta=beta)
    assert at_ref.item() == pytest.approx(2 / beta * math.log(2), abs=1e-9)


@pytest.mark.parametrize(
    "name, sign",
    [("npo", -1), ("ga", -1), ("ce", +1)],
)
def test_one_sgd_step_moves_the_forget_answer_likelihood(name, sign):
    g = torch.Generator().manual_seed(8)
    start = torch.randn(1, 6, 8, generator=g).double()
    labels = torch.tensor([[X, X, 3, 1, 5, 2]])
    logits = start.clone().requires_grad_(True)
    loss = {
        "npo": lambda: npo_loss(logits, start, labels),
        "ga": lambda: ga_loss(logits, labels),
        "ce": lambda: answer_ce(logits, labels),
    }[name]()
    loss.backward()
    with torch.no_grad():
        stepped = logits - 0.5 * logits.grad
    before = sequence_logprob(start, labels).item()
    after = sequence_logprob(stepped, labels).item()
    assert sign * (after - before) > 1e-3


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "which, bad",
    [
        ("logits", torch.zeros(2, 6)),
        ("ref_logits", torch.zeros(2, 6, 8)),
        ("labels", torch.zeros(2, 5, dtype=torch.long)),
        ("token_mask", torch.ones(6)),
        ("vocab_mask", torch.ones(6)),
    ],
)
def test_shape_mismatch_raises_config_error(which, bad):
    logits, ref_logits, labels, token_mask, vocab_mask = random_batch(seed=9)
    args = dict(
        logits=logits, ref_logits=ref_logits, labels=labels, token_mask=token_mask, vocab_mask=vocab_mask
    )
    args[which] = bad
    with pytest.raises(ConfigError, match=r"\(2, 6") as info:
        dmk_loss(**args)
    assert str(tuple(bad.shape)) in str(info.value)


def test_other_config_errors():
    logits, ref_logits, labels, token_mask, _ = random_batch(seed=10)
    with pytest.raises(ConfigError, match="beta"):
        npo_loss(logits, ref_logits, labels, beta=0.0)
    with pytest.raises(ConfigError, match="labels"):
        answer_ce(logits, labels[:, :-1])
    with pytest.raises(ConfigError, match="ref_logits"):
        kl_loss(logits, ref_logits[:1], labels)
    with pytest.raises(ConfigError, match="keeps at least one"):
        dmk_loss(logits, ref_logits, labels, token_mask, torch.zeros(7), renormalize=True)


# ----------------------------------------------------------------------------- golden file


def _compute_golden() -> dict:
    """Every loss on the seeded random batch of :func:`random_batch` (B=2, L=6, V=7)."""
    logits, ref_logits, labels, token_mask, vocab_mask = random_batch(seed=0)
    values = {
        "answer_ce": answer_ce(logits, labels),
        "ga_loss": ga_loss(logits, labels),
        "kl_loss": kl_loss(logits, ref_logits, labels),
        "dmk_loss": dmk_loss(logits, ref_logits, labels, token_mask, vocab_mask),
        "dmk_loss_renormalize": dmk_loss(
            logits, ref_logits, labels, token_mask, vocab_mask, renormalize=True
        ),
        "npo_loss_beta_0.1": npo_loss(logits, ref_logits, labels),
        "npo_loss_beta_1.0": npo_loss(logits, ref_logits, labels, beta=1.0),
        "joint_loss": joint_loss(
            answer_ce(logits, labels), dmk_loss(logits, ref_logits, labels, token_mask, vocab_mask)
        ),
        "sequence_logprob": sequence_logprob(logits, labels),
        "sequence_mean_logprob": sequence_mean_logprob(logits, labels),
    }
    return {
        "format_version": 1,
        "inputs": "tests/test_losses.py::random_batch(seed=0): B=2, L=6, V=7, float64",
        "values": {k: v.tolist() for k, v in values.items()},
    }


def test_golden_file():
    stored = json.loads(GOLDEN.read_text())
    current = _compute_golden()
    assert stored["format_version"] == current["format_version"]
    assert stored["values"].keys() == current["values"].keys()
    for key, value in current["values"].items():
        assert value == pytest.approx(stored["values"][key], abs=1e-6), key


if __name__ == "__main__":  # regenerate: python -m tests.test_losses
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(_compute_golden(), indent=2) + "\n")
    print(f"wrote {GOLDEN}")
