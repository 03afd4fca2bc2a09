"""LPIPS wrapper against the lpips package called directly with the same (random, test-only) backbone weights."""

import warnings

import lpips
import pytest
import torch
import torchvision

from vidbench.errors import VidbenchError
from vidbench.metrics import lpips_metric, weights


def _reference_with_same_weights(wrapper):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lpips.LPIPS(pretrained=True, net="alex", version="0.1", pnet_rand=True, verbose=False)
    ref.load_state_dict(wrapper.network.state_dict())
    return ref.eval()


@pytest.fixture(scope="module")
def metric():
    torch.manual_seed(0)
    return lpips_metric.LPIPS(_random_backbone_for_tests=True, batch_size=3)


def test_rgb_equals_lpips_package_on_minus_one_to_one(metric):
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(5, 3, 32, 32, generator=g), torch.rand(5, 3, 32, 32, generator=g)
    ours = metric(x, y)
    assert ours.shape == (5,) and ours.dtype == torch.float64
    with torch.no_grad():
        ref = _reference_with_same_weights(metric)(2 * x - 1, 2 * y - 1).reshape(-1)
    # Same float32 network and weights, but ours runs batches of 3 and the reference all 5, so conv kernels may
    # differ: float32 rounding through 5 layers, ~1e-7 relative (measured: exact here, 8e-8 relative in the
    # grayscale test below). A wrong input mapping moves LPIPS by ~70% (below).
    torch.testing.assert_close(ours, ref.double(), rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # the pitfall the mapping avoids: [0,1] inputs give a different (smaller) number
        unmapped = _reference_with_same_weights(metric)(x, y).reshape(-1)
    assert not torch.allclose(unmapped.double(), ours, rtol=1e-3)  # effect size: measured 72% apart


def test_grayscale_is_repeated_and_leading_dims_kept(metric):
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(2, 2, 1, 32, 32, generator=g), torch.rand(2, 2, 1, 32, 32, generator=g)
    ours = metric(x, y)
    assert ours.shape == (2, 2)
    with torch.no_grad():
        ref = _reference_with_same_weights(metric)(
            (2 * x - 1).reshape(4, 1, 32, 32).repeat(1, 3, 1, 1), (2 * y - 1).reshape(4, 1, 32, 32).repeat(1, 3, 1, 1)
        )
    # As in the RGB test: batches of 3 vs 4, float32 rounding (measured 7e-9).
    torch.testing.assert_close(ours.reshape(-1), ref.reshape(-1).double(), rtol=1e-5, atol=1e-6)
    assert torch.all(metric(x, x) == 0)


def test_backbone_loads_from_a_torchvision_state_dict(tmp_path, monkeypatch):
    """The loading path used with the real alexnet-owt-7be5be79.pth, exercised with a random AlexNet."""
    alex = torchvision.models.alexnet(weights=None)
    path = tmp_path / lpips_metric.ALEXNET_FILE
    torch.save(alex.state_dict(), path)
    # The random file cannot carry the real sha256 prefix: this test skips only that check.
    monkeypatch.setattr(weights, "verify", lambda path, spec: None)
    metric = lpips_metric.LPIPS(weights_dir=tmp_path)
    # Copies of the same tensors: exact (measured 0), whatever the float32 default tolerances.
    torch.testing.assert_close(getattr(metric.network.net.slice2, "3").weight, alex.features[3].weight)
    torch.testing.assert_close(getattr(metric.network.net.slice5, "10").bias, alex.features[10].bias)
    assert metric.weights["file"] == lpips_metric.ALEXNET_FILE


def test_wrong_alexnet_file_is_detected(tmp_path):
    (tmp_path / lpips_metric.ALEXNET_FILE).write_bytes(b"corrupt")
    with pytest.raises(VidbenchError, match="sha256 prefix .* does not match"):
        lpips_metric.LPIPS(weights_dir=tmp_path)


def test_missing_alexnet_names_file_and_place(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(weights.ENV_OFFLINE, "1")
    monkeypatch.delenv(weights.ENV_DIR, raising=False)
    with pytest.raises(weights.MetricUnavailable, match="alexnet-owt-7be5be79.pth not found") as e:
        lpips_metric.LPIPS()
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in str(e.value)


def test_bad_shapes(metric):
    with pytest.raises(VidbenchError, match="C = 1 or 3"):
        metric(torch.rand(1, 2, 32, 32), torch.rand(1, 2, 32, 32))
