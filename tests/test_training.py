"""The shared SVI loop and checkpoints: resume is bit-exact, interrupted saves are harmless, errors are clear."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from torch import nn

from ppl_models.infer import CheckpointError, load_checkpoint, save_checkpoint, train_svi
from ppl_models.infer import checkpoint as checkpoint_module
from ppl_models.infer.svi import make_optimizer


class TinyRegression(nn.Module):
    """y ~ N(net(x) + b, 0.5^2) with a Normal guide on the bias b: a neural module and a random guide."""

    def __init__(self):
        super().__init__()
        self.net = nn.Linear(3, 1)

    def model(self, x, y):
        pyro.module("net", self.net)
        b = pyro.sample("b", dist.Normal(0.0, 1.0))
        with pyro.plate("data", len(x)):
            pyro.sample("y", dist.Normal(self.net(x).squeeze(-1) + b, 0.5), obs=y)

    def guide(self, x, y):
        loc = pyro.param("b_loc", torch.tensor(0.0))
        scale = pyro.param("b_scale", torch.tensor(1.0), constraint=dist.constraints.positive)
        pyro.sample("b", dist.Normal(loc, scale))


def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.7 + 0.1 * torch.randn(64, generator=g)
    return [(x[:32], y[:32]), (x[32:], y[32:])]


def fit(epochs, checkpoint=None, resume=False, seed=0, **kwargs):
    pyro.clear_param_store()
    torch.manual_seed(seed)
    m = TinyRegression()
    history = train_svi(m.model, m.guide, data(), epochs=epochs, optimizer=make_optimizer("clipped_adam", lr=0.05),
                        modules={"net": m.net}, name="tiny", config={"hidden": 3}, checkpoint=checkpoint,
                        resume=resume, progress=False, **kwargs)
    return m, history


def state(m):
    return [m.net.weight.detach().clone(), pyro.param("b_loc").detach().clone(), pyro.param("b_scale").detach().clone()]


def test_training_reduces_the_loss_and_learns():
    m, history = fit(150)
    assert history.epochs == 150 and history.train_loss[-1] < 0.5 * history.train_loss[0]
    torch.testing.assert_close(m.net.weight.detach(), torch.tensor([[1.0, -2.0, 0.5]]), atol=0.1, rtol=0)


def test_resume_continues_bit_for_bit(tmp_path):
    straight, h_straight = fit(20)
    expected = state(straight)
    ckpt = tmp_path / "tiny.pt"
    fit(8, checkpoint=ckpt)  # "interrupted" after 8 epochs
    resumed, h_resumed = fit(20, checkpoint=ckpt, resume=True, seed=123)  # a new process would reseed anyway
    for a, b in zip(expected, state(resumed)):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert h_resumed.train_loss == h_straight.train_loss


def test_checkpoint_of_another_model_or_shape_is_refused(tmp_path):
    ckpt = tmp_path / "tiny.pt"
    m, _ = fit(2, checkpoint=ckpt)
    with pytest.raises(CheckpointError, match="tiny.pt: holds model 'tiny', not 'srnn'"):
        load_checkpoint(ckpt, name="srnn")
    with pytest.raises(CheckpointError, match="hidden=3 in the file but 5 requested"):
        load_checkpoint(ckpt, name="tiny", config={"hidden": 5})
    with pytest.raises(CheckpointError, match="module 'net' does not fit"):
        load_checkpoint(ckpt, modules={"net": nn.Linear(4, 1)})
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "none.pt")


def test_interrupted_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    ckpt = tmp_path / "tiny.pt"
    m, _ = fit(3, checkpoint=ckpt)
    before = ckpt.read_bytes()

    def crash(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_module.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(ckpt, "tiny", {"hidden": 3}, {"net": m.net})
    monkeypatch.undo()
    assert ckpt.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.pt"]
    assert load_checkpoint(ckpt, name="tiny")["epoch"] == 2


def test_early_stopping_restores_the_best_parameters():
    seen = {}

    def record(epoch, history):
        seen[epoch] = [t.clone() for t in state(m_holder["m"])] if "m" in m_holder else None

    m_holder = {}
    pyro.clear_param_store()
    torch.manual_seed(0)
    m = m_holder["m"] = TinyRegression()
    x, y = data()[0]
    val = [(x + 5.0, y)]  # a validation set the model cannot fit: its loss soon gets worse
    history = train_svi(m.model, m.guide, data(), epochs=200, optimizer=make_optimizer("adam", lr=0.05),
                        val_batches=val, patience=5, progress=False, on_epoch=record)
    assert history.stopped_early and history.epochs < 200
    assert history.val_loss[history.best_epoch] == min(history.val_loss)
    for a, b in zip(seen[history.best_epoch], state(m)):
        torch.testing.assert_close(a, b)


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="clipped_adam"):
        make_optimizer("sgd")


def test_validation_checks_the_first_epoch_only_and_a_nan_loss_stops_with_the_epoch():
    """Pyro's checks run in the first epoch (a bad site is caught there) and are off afterwards (they cost a
    check per site and step); a non-finite loss then stops training with an error naming the epoch."""
    x, y = data()[0]
    seen = []

    def model(x, y):
        seen.append(pyro.infer.util.is_validation_enabled())
        scale = torch.tensor(-1.0) if len(seen) == 1 else torch.tensor(1.0)  # invalid on the very first step
        pyro.sample("y", dist.Normal(pyro.param("loc", torch.tensor(0.0)), scale).expand(y.shape).to_event(1), obs=y)

    def guide(x, y):
        pass

    pyro.clear_param_store()
    with pytest.raises(ValueError, match="scale"):
        train_svi(model, guide, [(x, y)], epochs=3, progress=False)
    seen.clear()
    seen.append(None)  # from here on the scale is valid
    train_svi(model, guide, [(x, y)], epochs=3, progress=False)
    assert seen[1:] == [True, False, False]

    def nan_model(x, y):
        pyro.sample("y", dist.Normal(pyro.param("loc", torch.tensor(0.0)), 1.0).expand(y.shape).to_event(1),
                    obs=y * float("nan"))

    with pyro.validation_enabled(False), pytest.raises(FloatingPointError, match="epoch 0"):
        train_svi(nan_model, guide, [(x, y)], epochs=3, progress=False)
    assert pyro.infer.util.is_validation_enabled()  # the global setting is left as it was
