"""VTA: size, interface, determinism, learning, segment limits and the temperature schedule."""

import math

import numpy as np
import pytest
import torch
from conftest import mmnist_clips

from vidbench.errors import VidbenchError
from vidbench.models import create_model, model_from_config


@pytest.fixture(scope="module")
def clips():
    return mmnist_clips(4, 12)


def segments(reads: torch.Tensor) -> tuple[int, int]:
    """reads [T] of 0/1 -> (number of segments, longest segment) with a segment starting at every read."""
    starts = torch.nonzero(reads > 0).flatten().tolist() + [len(reads)]
    lengths = [b - a for a, b in zip(starts, starts[1:])]
    return len(lengths), max(lengths)


def test_paper_size_parameter_count():
    count = create_model("vta", "mmnist").num_parameters()
    print(f"vta --preset mmnist: {count:,} parameters (CW-VAE paper Table D.2: 3M)")
    assert abs(count - 3e6) / 3e6 < 0.10  # the paper rounds to 3M: an exact count, only the reference is rough


def test_config_rebuilds_the_same_model_and_rejects_impossible_limits():
    model = create_model("vta", "tiny", state_size=3)
    rebuilt = model_from_config(model.config)
    assert rebuilt.config == model.config and rebuilt.config["amsgrad"] and rebuilt.config["grad_clip"] == 10.0
    rebuilt.load_state_dict(model.state_dict())
    with pytest.raises(VidbenchError, match="seq_size 8 cannot be covered"):
        create_model("vta", "tiny", max_seg_num=2, max_seg_len=3)


def test_long_clips_become_consecutive_windows():
    model = create_model("vta", "tiny")  # init 2 + seq 8 + init 2 = 12 frames at stride 8
    video = torch.arange(30.0).view(1, 30, 1, 1, 1)
    windows = model.windows(video)
    assert windows.shape[:2] == (3, 12)
    modelled = windows[:, 2:10].flatten().tolist()
    assert modelled == list(range(2, 26))  # each modelled frame once, in order


def test_predict_shape_range_and_seed_determinism(clips):
    torch.manual_seed(0)
    model = create_model("vta", "tiny")
    context = clips[:2, :6]
    run = lambda seed: model.predict(context, 7, num_samples=3, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    a, b, c = run(1), run(1), run(2)
    assert a.shape == (2, 3, 7, 1, 64, 64)
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_vta_warmup_in_prediction_is_the_training_warmup(clips):
    """Issue 12 item 6: training warms the upper recurrence up on init_size frames from zero at every window's
    start; prediction uses the last init_size context frames the same way, whatever the context length."""
    torch.manual_seed(0)
    model = create_model("vta", "tiny")  # init_size 2
    init = model.config["init_size"]
    run = lambda ctx: model.predict(ctx, 5, generator=torch.Generator().manual_seed(3))  # noqa: E731
    long, short = clips[:2, :10], clips[:2, 10 - init : 10]
    assert torch.equal(run(long), run(short))
    earlier_changed = long.clone()
    earlier_changed[:, : 10 - init] = 0
    assert torch.equal(run(earlier_changed), run(long))      # frames before the warm-up are not used
    last_changed = long.clone()
    last_changed[:, -1] = 1 - last_changed[:, -1]
    assert not torch.equal(run(last_changed), run(long))     # the warm-up frames are


@pytest.mark.parametrize("read_bias", [10.0, -10.0, 0.0])
def test_training_boundaries_respect_segment_limits(clips, read_bias):
    torch.manual_seed(0)
    # Limits that bind inside the 8 modelled frames: at most 4 segments of at most 3 frames.
    model = create_model("vta", "tiny", max_seg_num=4, max_seg_len=3)
    free = create_model("vta", "tiny", max_seg_num=8, max_seg_len=8)
    for m in (model, free):  # push the posterior toward always reading (+), never reading (-), or neither
        m.post_boundary[-1].bias.data = torch.tensor([read_bias, -read_bias])
    reads = model.inference(model.windows(clips))["boundaries"]
    for window in reads:
        count, longest = segments(window)
        assert count <= 4 and longest <= 3
    free_reads = free.inference(free.windows(clips))["boundaries"]
    if read_bias > 0:  # the limits are what stops it: unconstrained, every frame starts a segment
        assert free_reads.sum(1).eq(8).all() and reads.sum(1).eq(4).all()
    elif read_bias < 0:
        assert free_reads.sum(1).eq(1).all() and reads.sum(1).ge(3).all()


def test_prediction_boundaries_respect_segment_limits_per_block(clips):
    torch.manual_seed(0)
    model = create_model("vta", "tiny", max_seg_num=4, max_seg_len=3)
    for read_bias in (10.0, -10.0):
        model.prior_boundary.bias.data = torch.tensor([read_bias, -read_bias])
        _, reads = model.rollout(clips[:2, :4], 40, torch.Generator().manual_seed(0))
        for sample in reads:
            assert segments(sample)[1] <= 3  # the length limit runs across blocks
            for block in sample.split(8):  # the count limit restarts every seq_size = 8 frames
                assert block.sum() <= 4
        if read_bias > 0:  # reads whenever allowed: the count limit binds in every block
            assert all(block.sum() == 4 for sample in reads for block in sample.split(8))
        else:  # copies whenever allowed: a read exactly when a segment reaches 3 frames
            assert all(segments(sample) == (14, 3) for sample in reads)


def test_temperature_anneals_with_a_checkpointed_step_counter(clips):
    torch.manual_seed(0)
    model = create_model("vta", "tiny")
    assert model.temperature() == pytest.approx(1.0)  # Python floats (float64) both sides: default rel 1e-6 is ample
    for _ in range(2):
        model.loss(clips[:1])
    assert int(model.train_step) == 2
    model.train_step.fill_(100_000)
    assert model.temperature() == pytest.approx(0.1 + 0.9 * 0.999 ** 1000)  # float64 both, as above
    restored = create_model("vta", "tiny")
    restored.load_state_dict(model.state_dict())
    assert restored.temperature() == model.temperature()
    model.eval()
    model.loss(clips[:1])  # evaluation does not advance the schedule
    assert int(model.train_step) == 100_000


def test_loss_falls_on_moving_mnist(clips):
    torch.manual_seed(0)
    model = create_model("vta", "tiny")
    optimiser = torch.optim.Adam(model.parameters(), lr=model.config["lr"], amsgrad=model.config["amsgrad"])
    # The Gaussian NLL (std 1, summed over 64x64 pixels) cannot go below 4096 * log(sqrt(2 pi)).
    floor = 64 * 64 * 0.5 * math.log(2 * math.pi)
    excess = []
    for _ in range(15):
        loss = model.loss(clips[:2])["loss"]
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), model.config["grad_clip"])
        optimiser.step()
        excess.append(loss.item() - floor)
    print(f"vta tiny: loss above the NLL floor {np.mean(excess[:3]):.1f} -> {np.mean(excess[-3:]):.1f}")
    # Learned: over seeds 0-20 the ratio was 0.70-0.81 (mean 0.75, sd 0.035; seed 0: 0.724 on ATen default, AVX2
    # and AVX512 kernels alike), so the old 0.8 failed 2 seeds in 21. Without learning (lr 0) it is 0.997-0.999.
    # 0.9 is ~4 sd above the mean and 0.09 under the no-learning value.
    assert np.mean(excess[-3:]) < 0.9 * np.mean(excess[:3])


def test_encoding_each_frame_once_matches_encoding_every_window():
    """loss() encodes a clip's frames once and gathers the overlapping windows, with BatchNorm statistics
    weighted by how many windows hold each frame: the same loss, gradients and running statistics as
    encoding all window frames, within fp32 rounding (measured: loss, nll, kl_obs equal, kl_abs rel 1.2e-7,
    kl_mask rel 1.8e-6, gradients rel 1.8e-7, running statistics 6e-8 abs; bounds rel 1e-5 + abs 1e-6, 1e-4)."""
    video = mmnist_clips(2, 30)  # tiny: windows of 12 frames at stride 8 -> 3 per clip, 28 of 30 frames used
    results = []
    for shared in (False, True):
        torch.manual_seed(0)
        model = create_model("vta", "tiny").train()
        if not shared:
            model.encode_windows = lambda video: None  # inference() then encodes every window frame
        torch.manual_seed(3)
        out = model.loss(video)
        out["loss"].backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        stats = torch.cat([b.flatten().float() for name, b in model.encoder.named_buffers()])
        results.append((out, grads, stats))
    (ref, ref_grads, ref_stats), (new, new_grads, new_stats) = results
    for key in ("loss", "nll", "kl_abs", "kl_obs", "kl_mask"):
        assert torch.allclose(new[key], ref[key], rtol=1e-5, atol=1e-6), key
    assert float((new_grads - ref_grads).norm() / ref_grads.norm()) < 1e-4
    assert torch.allclose(new_stats, ref_stats, rtol=1e-5, atol=1e-6)


def test_weighted_batch_norm_equals_batch_norm_of_the_repeated_batch():
    """The weighted form against nn.BatchNorm2d on x.repeat_interleave(counts): outputs, input and affine
    gradients, running statistics. Activations offset by 3 (mean far from 0, as after a conv with bias) so a
    cancelling variance formula would show. fp32 rounding of other summation orders: rel 1e-5 (measured
    ~1e-6); a wrong weight or variance term is off by O(0.1)."""
    from vidbench.models.fast_layers import weighted_batch_norm

    torch.manual_seed(0)
    x = (torch.randn(3, 4, 5, 5) + 3).requires_grad_()
    counts = torch.tensor([1, 2, 3])
    bn_ref, bn = torch.nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)
    with torch.no_grad():
        for m in (bn_ref, bn):
            m.weight.copy_(torch.linspace(0.5, 2, 4)), m.bias.copy_(torch.linspace(-1, 1, 4))
    upstream = torch.randn(6, 4, 5, 5)
    ref = bn_ref(x.repeat_interleave(counts, 0))
    (ref * upstream).sum().backward()
    ref_grads = [x.grad.clone(), bn_ref.weight.grad, bn_ref.bias.grad]
    x.grad = None
    out = weighted_batch_norm(x, bn, counts)
    (out.repeat_interleave(counts, 0) * upstream).sum().backward()
    assert torch.allclose(out.repeat_interleave(counts, 0), ref, rtol=1e-5, atol=1e-5)
    for got, want in zip([x.grad, bn.weight.grad, bn.bias.grad], ref_grads):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-5)
    assert torch.allclose(bn.running_mean, bn_ref.running_mean, rtol=1e-5)
    assert torch.allclose(bn.running_var, bn_ref.running_var, rtol=1e-5)
