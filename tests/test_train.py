"""The training loop: outputs of a run, exact resume after a kill, config guards, data order, optimiser."""

import json
import math

import numpy as np
import pytest
import torch

from vidbench.data.store import PreparedSplit
from vidbench.errors import VidbenchError
from vidbench.train import config as training
from vidbench.train import load_trained, train
from vidbench.train.checkpoint import load_checkpoint
from vidbench.train.config import parse_set_options
from vidbench.train.optim import TFAdam, clip_global_norm_
from vidbench.train.plan import epoch_batches, plan_line, planned_steps
from vidbench.train.step import TrainStep

# 16 training sequences of 100 frames: 8 windows of 12 frames each, 128 per epoch, 32 steps at global batch 4.
FAST = dict(batch_size=4, seq_len=12, progress=False, echo=lambda line: None)


def _state(run_dir):
    return load_checkpoint(run_dir / "checkpoint.pt")


def test_run_writes_config_log_and_loadable_checkpoint(tiny_mmnist, tmp_path):
    run = train("cwvae", tiny_mmnist, preset="tiny", steps=3, run_dir=tmp_path / "run", checkpoint_every=2, **FAST)
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["name"] == "cwvae" and config["model"]["preset"] == "tiny"
    assert config["train"]["lr"] == 1e-3  # the preset's learning rate
    assert config["train"]["adam_eps"] == 1e-4 and config["train"]["grad_clip"] == 10000
    assert len(config["dataset"]["train_data_sha256"]) == 64
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]
    assert {"loss", "nll", "kl_l0", "kl_l1", "kl_l2", "lr", "time", "grad_norm"} <= set(lines[0])
    assert all(math.isfinite(r["loss"]) for r in lines)
    # weights_only loading (load_checkpoint uses it) and everything the brief lists is there
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3 and (state["epoch"], state["position"]) == (0, 3)
    assert {"model", "optimizer", "rng", "config"} <= set(state) and len(state["optimizer"]["state"]) > 0
    model = load_trained(run)
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, state["model"][key])


def test_default_preset_and_run_dir_follow_the_dataset(tiny_mmnist):
    assert training.default_preset("cwvae", "mmnist") == "mmnist"
    assert training.default_preset("cwvae", "nosuch") is None
    assert str(training.default_run_dir("cwvae", "mmnist", "mmnist")) == "models/cwvae-mmnist-mmnist"


@pytest.mark.parametrize("model,preset,noise", [("test-linear", "tiny", 0.5), ("cwvae", "tiny", None)])
def test_killed_and_resumed_run_ends_with_the_same_weights(tiny_mmnist, tmp_path, monkeypatch, linear_model,
                                                           model, preset, noise):
    overrides = {"noise": noise} if noise is not None else {}
    # seq_len 60: one window per 100-frame video, so 16 windows, 4 steps per epoch, and 6 steps cross an epoch.
    common = dict(preset=preset, overrides=overrides, steps=6, checkpoint_every=3, **{**FAST, "seq_len": 60})
    straight = train(model, tiny_mmnist, run_dir=tmp_path / "straight", **common)

    # Kill the second run inside step 5: the checkpoint of step 3 survives, the log has steps 1-4.
    real_step, calls = TrainStep.__call__, []

    def dying_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(TrainStep, "__call__", dying_step)
    with pytest.raises(KeyboardInterrupt):
        train(model, tiny_mmnist, run_dir=tmp_path / "resumed", **common)
    assert _state(tmp_path / "resumed")["step"] == 3
    monkeypatch.setattr(TrainStep, "__call__", real_step)
    resumed = train(model, tiny_mmnist, run_dir=tmp_path / "resumed", **common)

    a, b = _state(straight), _state(resumed)
    assert b["step"] == 6 and (b["epoch"], b["position"]) == (1, 2)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in a["optimizer"]["state"]:
        assert torch.equal(a["optimizer"]["state"][key]["exp_avg_sq"], b["optimizer"]["state"][key]["exp_avg_sq"])
    steps = [json.loads(line)["step"] for line in (resumed / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # the killed run's step 4 was dropped and redone
    losses = lambda run: [json.loads(line)["loss"] for line in (run / "log.jsonl").read_text().splitlines()]  # noqa: E731
    assert losses(straight) == losses(resumed)


def test_rerun_is_a_no_op_and_more_steps_continue(tiny_mmnist, tmp_path, linear_model):
    run = train(linear_model, tiny_mmnist, steps=2, run_dir=tmp_path / "r", **FAST)
    before = _state(run)["model"]
    train(linear_model, tiny_mmnist, steps=2, run_dir=run, **FAST)
    assert all(torch.equal(before[k], v) for k, v in _state(run)["model"].items())
    train(linear_model, tiny_mmnist, steps=3, run_dir=run, **FAST)
    assert _state(run)["step"] == 3


def test_changed_config_in_an_existing_run_dir_is_refused(tiny_mmnist, tmp_path, linear_model):
    run = train(linear_model, tiny_mmnist, steps=1, run_dir=tmp_path / "r", **FAST)
    with pytest.raises(VidbenchError, match=r"config.json: this run was made with another config \(train.lr"):
        train(linear_model, tiny_mmnist, steps=2, run_dir=run, lr=1e-2, **FAST)
    with pytest.raises(VidbenchError, match="model.hidden: 16 -> 8"):
        train(linear_model, tiny_mmnist, steps=2, run_dir=run, overrides={"hidden": 8}, **FAST)


def test_checkpoint_from_another_config_or_corrupt_is_a_clear_error(tiny_mmnist, tmp_path, linear_model):
    a = train(linear_model, tiny_mmnist, steps=1, run_dir=tmp_path / "a", **FAST)
    b = train(linear_model, tiny_mmnist, steps=1, run_dir=tmp_path / "b", seed=1, **FAST)
    (b / "checkpoint.pt").write_bytes((a / "checkpoint.pt").read_bytes())
    with pytest.raises(VidbenchError, match=r"checkpoint.pt: this run was made with another config \(train.seed: 0 -> 1"):
        train(linear_model, tiny_mmnist, steps=2, run_dir=b, seed=1, **FAST)
    (b / "checkpoint.pt").write_bytes((a / "checkpoint.pt").read_bytes()[:1000])
    with pytest.raises(VidbenchError, match="checkpoint.pt: not a readable checkpoint"):
        train(linear_model, tiny_mmnist, steps=2, run_dir=b, seed=1, **FAST)
    with pytest.raises(VidbenchError, match="not a readable checkpoint"):
        load_trained(b)


def test_bad_inputs_are_one_line_errors(tiny_mmnist, tmp_path):
    cases = [
        (dict(model_name="cwvee", dataset_root=tiny_mmnist), "unknown model 'cwvee'; did you mean 'cwvae'"),
        (dict(model_name="cwvae", dataset_root=tiny_mmnist, preset="huge"), "unknown preset 'huge'"),
        (dict(model_name="cwvae", dataset_root=tmp_path / "nope"), "not a prepared dataset"),
        (dict(model_name="cwvae", dataset_root=tiny_mmnist, preset="tiny", overrides={"channels": 3}),
         "frames have 1 channel(s), model cwvae (preset tiny) takes 3"),
        (dict(model_name="cwvae", dataset_root=tiny_mmnist, preset="tiny", batch_size=256),
         "larger than the 128 training windows of 12 frames"),
        (dict(model_name="cwvae", dataset_root=tiny_mmnist, preset="tiny", seq_len=101), "no train sequence has 101"),
        (dict(model_name="cwvae", dataset_root=tiny_mmnist, preset="tiny", amp="fp8"), "--amp 'fp8'"),
        (dict(model_name="cwvae", dataset_root=tiny_mmnist, steps=1, epochs=1), "not both"),
    ]
    for kwargs, message in cases:
        kwargs.setdefault("batch_size", 4)
        kwargs.setdefault("steps", 1)
        kwargs.setdefault("seq_len", 12)
        with pytest.raises(VidbenchError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
            train(**kwargs, run_dir=tmp_path / "bad", progress=False)
        assert "\n" not in str(error.value)
    with pytest.raises(VidbenchError, match="not a vidbench checkpoint|does not exist"):
        load_trained(tmp_path / "missing.pt")


def test_gradient_free_model_trains_without_an_optimiser(tiny_mmnist, tmp_path):
    run = train("random-frame", tiny_mmnist, steps=2, run_dir=tmp_path / "rf", **FAST)
    state = _state(run)
    assert state["optimizer"] == {} and int(state["model"]["seen"]) == 2 * 4 * 12  # every frame shown was seen
    model = load_trained(run)
    assert model.predict(torch.zeros(1, 4, 1, 64, 64), 3).shape == (1, 1, 3, 1, 64, 64)


def test_data_order_depends_only_on_seed_and_epoch():
    first = epoch_batches(16, 4, seed=0, epoch=0)
    assert [b.tolist() for b in first] == [b.tolist() for b in epoch_batches(16, 4, seed=0, epoch=0)]
    assert sorted(np.concatenate(first).tolist()) == list(range(16))  # a permutation, no repeats
    assert [b.tolist() for b in first] != [b.tolist() for b in epoch_batches(16, 4, seed=0, epoch=1)]
    assert len(epoch_batches(10, 4, 0, 0)) == 2  # the incomplete batch is dropped


def test_tf_adam_matches_the_epsilon_hat_formula_not_torch_adam():
    torch.manual_seed(0)
    start = torch.randn(5, dtype=torch.float64)
    grads = [torch.randn(5, dtype=torch.float64) for _ in range(3)]
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-4

    ours, theirs = start.clone().requires_grad_(), start.clone().requires_grad_()
    opt, torch_opt = TFAdam([ours], lr=lr, eps=eps), torch.optim.Adam([theirs], lr=lr, eps=eps)
    p, m, v = start.numpy().copy(), np.zeros(5), np.zeros(5)
    for t, g in enumerate(grads, 1):
        ours.grad, theirs.grad = g.clone(), g.clone()
        opt.step()
        torch_opt.step()
        m, v = b1 * m + (1 - b1) * g.numpy(), b2 * v + (1 - b2) * g.numpy() ** 2
        p = p - lr * math.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)  # TF's AdamOptimizer
    # float64 both, the same formula term by term (measured equal); 1e-12 allows a reordered product.
    np.testing.assert_allclose(ours.detach().numpy(), p, rtol=1e-12)
    assert not torch.allclose(ours, theirs, rtol=1e-6)  # torch's eps placement: weights up to 1.4e-3 apart (measured)


def test_tf_adam_capturable_form_takes_the_same_steps():
    """--cuda-graphs' TF-style Adam computes the step size on the device instead of in Python: same steps.
    float32 weights: the device form multiplies m / (sqrt(v) + eps) by the step size where the other
    fuses it into addcdiv, a one-rounding difference per step; 1e-6 relative is ~8 float32 ulps."""
    torch.manual_seed(0)
    start, grads = torch.randn(50), [torch.randn(50) for _ in range(6)]
    plain, graph_safe = start.clone().requires_grad_(), start.clone().requires_grad_()
    opts = TFAdam([plain], lr=0.01), TFAdam([graph_safe], lr=0.01, capturable=True)
    for g in grads:
        plain.grad, graph_safe.grad = g.clone(), g.clone()
        for opt in opts:
            opt.step()
    torch.testing.assert_close(graph_safe, plain, rtol=1e-6, atol=1e-7)
    assert not torch.equal(graph_safe, start)


def test_clip_global_norm_scales_all_gradients_together():
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])
    norm = clip_global_norm_([a, b], 2.5)
    # float32 norm of (3, 0, 4) and the 0.5 scale: exact in float32 (measured); pytest's default rel 1e-6 is ~8 ulps
    assert float(norm) == pytest.approx(5.0)
    assert a.grad.tolist() == pytest.approx([1.5, 0.0]) and b.grad.tolist() == pytest.approx([2.0])
    clip_global_norm_([a, b], 100.0)  # under the limit: unchanged
    assert b.grad.tolist() == pytest.approx([2.0])


def test_set_options_parse_as_json_or_text():
    assert parse_set_options(["k=4", "dec_std=0.1", "flag=true", "name=x"]) == {"k": 4, "dec_std": 0.1, "flag": True,
                                                                               "name": "x"}
    with pytest.raises(VidbenchError, match="expected key=value"):
        parse_set_options(["k"])


def test_each_family_gets_the_optimiser_of_its_original_code():
    assert training.optimizer_config({"name": "cwvae"}) == {"optimizer": "tf-adam", "adam_eps": 1e-4,
                                                           "amsgrad": False, "grad_clip": 10000.0}
    assert training.optimizer_config({"name": "svg"})["optimizer"] == "adam"
    assert training.optimizer_config({"name": "svg"})["grad_clip"] is None
    vta = training.optimizer_config({"name": "vta", "amsgrad": True, "grad_clip": 10.0})
    assert (vta["optimizer"], vta["amsgrad"], vta["grad_clip"], vta["adam_eps"]) == ("adam", True, 10.0, 1e-8)
    assert isinstance(training.make_optimizer([torch.zeros(1, requires_grad=True)], {**vta, "lr": 1e-3}),
                      torch.optim.Adam)
    with pytest.raises(VidbenchError, match="optimizer='sgd'"):
        training.optimizer_config({"name": "cwvae", "optimizer": "sgd"})


def test_epoch_is_the_authors_epoch_with_the_planned_step_count_per_dataset():
    """Issue 12 item 3: an epoch is every non-overlapping 100-frame window of every training video (the authors'
    loader), so the paper's epochs at batch 50 give these step counts (the authors repeat before batching and
    keep a partial last batch: minerl 57,660, mazes 180,000, mmnist 120,000)."""
    from vidbench.train.config import DEFAULT_EPOCHS
    from vidbench.train.plan import planned_steps

    datasets = {  # training videos x frames: REFERENCE.md section 3; mazes: the paper's 9M frames / 300
        "minerl": (961, 500), "mazes": (30_000, 300), "mmnist": (20_000, 100)}
    expected = {"minerl": (4_805, 96, 57_600), "mazes": (90_000, 1_800, 180_000), "mmnist": (20_000, 400, 120_000)}
    for name, (videos, frames) in datasets.items():
        assert planned_steps([frames] * videos, 100, 50, DEFAULT_EPOCHS[name]) == expected[name], name
    # The old epoch (one random window per video) gave minerl 19 x 600 = 11,400 steps.
    assert planned_steps([500] * 961, 500, 50, 600)[2] == 11_400


def test_training_prints_the_planned_step_count_at_the_start(tiny_mmnist, tmp_path, linear_model):
    lines = []
    train(linear_model, tiny_mmnist, run_dir=tmp_path / "run", epochs=2,
          **{**FAST, "seq_len": 6, "echo": lines.append})
    split = PreparedSplit(tiny_mmnist, "train")
    windows, per_epoch, steps = planned_steps([split.length(i) for i in range(len(split))], 6, 4, 2)
    assert windows == len(split) * (split.length(0) // 6) and steps == 2 * per_epoch
    planned = [line for line in lines if line.startswith("planned:")]  # beside it: the training data check
    assert planned == [plan_line(steps, windows, len(split), 6, 4)]
    assert f"planned: {steps:,} steps of 4 windows = 2 epochs x {per_epoch:,} steps" in planned[0]
    assert lines.index(planned[0]) <= 1  # said before the first step's line
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(log) == steps and log[-1]["epoch"] == 1


def test_compile_says_that_its_first_step_compiles(tiny_mmnist, tmp_path, monkeypatch):
    import vidbench.train.step as step_module

    monkeypatch.setattr(step_module, "compile_loss", lambda forward: forward)  # the message, not the compile
    lines = []
    train("cwvae", tiny_mmnist, preset="tiny", steps=1, run_dir=tmp_path / "run", compile=True,
          **{**FAST, "echo": lines.append})
    said = [line for line in lines if line.startswith("--compile:")]
    assert len(said) == 1 and lines.index(said[0]) < 3 and "first step compiles" in said[0]


def test_collate_windows_equals_default_collate(tiny_mmnist):
    from vidbench.data.loader import TrainWindows, collate_windows
    from vidbench.data.store import PreparedSplit

    windows = TrainWindows(PreparedSplit(tiny_mmnist, "train"), length=12)
    items = [windows[i] for i in range(4)]
    assert torch.equal(collate_windows(items), torch.utils.data.default_collate(items))
    loader = torch.utils.data.DataLoader(windows, batch_sampler=[[0, 1, 2, 3]], num_workers=1,
                                         collate_fn=collate_windows)
    assert torch.equal(next(iter(loader)), torch.stack(items))  # through a worker's shared memory
