"""CW-VAE's posterior recurrence with a hand-written backward (vidbench/models/rssm_bptt.py) against autograd."""

import pytest
import torch
from conftest import mmnist_clips

from vidbench.models import create_model
from vidbench.models.cwvae import RSSMCell
from vidbench.models.rssm_bptt import PosteriorUnroll


def loss_and_grads(monkeypatch, hand_written: bool, frames: int):
    monkeypatch.setattr(RSSMCell, "hand_written_backward", hand_written)
    torch.manual_seed(0)
    model = create_model("cwvae", "tiny").train().double()
    torch.manual_seed(1)
    out = model.loss(mmnist_clips(2, frames).double())
    out["loss"].backward()
    return out["loss"].detach(), {name: p.grad for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("frames", [12, 7])  # 7: partial blocks at both upper levels
def test_the_training_loss_and_every_gradient_equal_autograds(monkeypatch, frames):
    loss, grads = loss_and_grads(monkeypatch, False, frames)
    loss_h, grads_h = loss_and_grads(monkeypatch, True, frames)
    assert grads_h.keys() == grads.keys() and len(grads) == sum(1 for _ in create_model("cwvae", "tiny").parameters())
    # float64: the same operations but for the order of the sums over time (measured: loss rel 0, gradients
    # 1.4e-15); 1e-12 leaves room for float64 rounding, while any wrong term would be off by far more.
    assert abs(float(loss_h / loss) - 1) < 1e-12
    # (<=: with 2 top-level steps the top GRU's weight_hh gradient is exactly 0 in both: at initialisation the
    # biases are 0 and the top context is zeros, so the top level's first state h_0 is 0, all W_hh ever sees)
    for name in grads:
        assert float((grads_h[name] - grads[name]).norm()) <= 1e-12 * float(grads[name].norm()), name


def test_gradcheck_of_every_input():
    # z0, h0 and the noise are not differentiated in training (zeros, samples), but the Function supports them
    batch, steps, hidden, stoch, deter = 2, 3, 5, 3, 4
    shapes = [(batch, steps, hidden), (batch, steps, hidden), (batch, steps, stoch), (batch, stoch), (batch, deter),
              (hidden, stoch), (3 * deter, hidden), (3 * deter,), (3 * deter, deter), (3 * deter,),
              (hidden, deter), (hidden, hidden), (hidden,), (2 * stoch, hidden), (2 * stoch,)]
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randn(*s, generator=generator, dtype=torch.float64, requires_grad=True) for s in shapes]
    assert torch.autograd.gradcheck(lambda *x: PosteriorUnroll.apply(*x, 1e-4), inputs)  # finite differences


def test_prediction_and_no_grad_passes_keep_the_plain_loop(monkeypatch):
    calls = []
    monkeypatch.setattr(PosteriorUnroll, "apply", lambda *a: calls.append(1) or pytest.fail("not under no_grad"))
    torch.manual_seed(0)
    model = create_model("cwvae", "tiny").eval()
    with torch.no_grad():
        model.observe(mmnist_clips(1, 8))
    model.predict(mmnist_clips(1, 4), 4)
    assert not calls
