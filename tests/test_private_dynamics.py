"""The synthetic set with private dynamics (``synthetic_private_dynamics``) is the MVRNN's case: what b does
beyond the shared cause cannot be read off sensor a, but can be read off b's own frames before a gap."""

import numpy as np
import pytest

from ppl_models.data.synthetic.multimodal import synthetic_multimodal, synthetic_private_dynamics
from ppl_models.multimodal.ridge import context_design, solve

GAP = slice(20, 36)  # b hidden in frames 20-35 of every test sequence, seen before


def ridge_from_a(train, test, target, k=8):
    """Ridge regression of ``target`` (train, test pair of (N, T, D)) on sensor a's frames t-k .. t+k."""
    design = [context_design({"a": d.sensors["a"]}, {"a": d.mask("a")}, ["a"], k) for d in (train, test)]
    weight = solve(design[0].reshape(-1, design[0].shape[-1]), target[0].reshape(-1, target[0].shape[-1]), 1e-2)
    return design[0] @ weight, design[1] @ weight


def ar_through_gap(train_r, test_r, p=12):
    """A linear AR(p) of b's residual fitted one step ahead on the training sequences, run through the gap of
    the test sequences from the frames before it (its own forecasts feed it inside the gap)."""
    N, T, D = train_r.shape
    lags = np.concatenate([train_r[:, p - j - 1:T - j - 1] for j in range(p)], -1).reshape(-1, p * D)
    weight = solve(np.c_[lags, np.ones(len(lags))], train_r[:, p:].reshape(-1, D), 1e-2)
    r = test_r.copy()
    for t in range(GAP.start, GAP.stop):
        r[:, t] = np.c_[np.concatenate([r[:, t - j - 1] for j in range(p)], -1), np.ones(len(r))] @ weight
    return r


def gap_rmse(make):
    """(RMSE of b in the gap from ridge on a, the same plus the AR of b's own residual), on a fresh draw."""
    train, _ = make(256, 50, seed=0)
    test, _ = make(64, 50, seed=1)
    fitted, pred = ridge_from_a(train, test, (train.sensors["b"], test.sensors["b"]))
    residual = ar_through_gap(train.sensors["b"] - fitted, test.sensors["b"] - pred)
    truth = test.sensors["b"][:, GAP]
    return (np.sqrt(np.mean((pred[:, GAP] - truth) ** 2)),
            np.sqrt(np.mean((pred[:, GAP] + residual[:, GAP] - truth) ** 2)))


def test_a_is_drawn_as_in_the_shared_cause_set():
    shared, _ = synthetic_multimodal(16, 30, seed=4)
    private, meta = synthetic_private_dynamics(16, 30, seed=4)
    np.testing.assert_array_equal(private.sensors["a"], shared.sensors["a"])
    assert private.sensors["b"].shape == (16, 30, 2)
    part = meta["private_b"].var() / private.sensors["b"].var()
    assert 0.1 < part < 0.4  # b's private part is a real share of b, not a wobble


def test_the_private_part_is_not_in_a():
    train, train_meta = synthetic_private_dynamics(256, 50, seed=0)
    test, test_meta = synthetic_private_dynamics(64, 50, seed=1)
    _, pred = ridge_from_a(train, test, (train_meta["private_b"], test_meta["private_b"]))
    truth = test_meta["private_b"]
    r2 = 1 - np.sum((pred - truth) ** 2) / np.sum((truth - truth.mean((0, 1))) ** 2)
    assert r2 < 0.05
    _, pred = ridge_from_a(train, test, (train_meta["shared_b"], test_meta["shared_b"]))  # the shared part is
    truth = test_meta["shared_b"]
    assert 1 - np.sum((pred - truth) ** 2) / np.sum((truth - truth.mean((0, 1))) ** 2) > 0.9


def test_b_own_past_fills_the_gap_only_in_the_private_dynamics_set():
    ridge, with_own_past = gap_rmse(synthetic_private_dynamics)
    assert with_own_past < 0.85 * ridge  # b's frames before the gap carry what a does not
    ridge, with_own_past = gap_rmse(synthetic_multimodal)
    assert with_own_past > 0.9 * ridge  # control: there a carries (nearly) all that can be known


def test_export_multimodal_writes_the_private_dynamics_set(tmp_path, capsys):
    from ppl_models.cli import main
    from ppl_models.data.fusion_files import load_fusion

    assert main(["export-multimodal", "--dataset", "private-dynamics", "--frames", "20", "--seed", "3",
                 "--out-dir", str(tmp_path)]) == 0
    train, test = load_fusion(tmp_path / "train.npz"), load_fusion(tmp_path / "test.npz")
    assert train.shape == (256, 20) and test.shape == (64, 20) and train.names == ["a", "b"]
    np.testing.assert_allclose(test.sensors["b"], synthetic_private_dynamics(64, 20, seed=4)[0].sensors["b"])
    with pytest.raises(SystemExit) as exit_info:
        main(["export-multimodal", "--frames", "3", "--out-dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "--frames" in capsys.readouterr().err


def test_ridge_mvrnn_own_reads_the_target_around_a_gap_and_the_default_does_not():
    import pyro
    import torch

    from ppl_models.multimodal.imputation import build_imputer, fit, impute

    train, _ = synthetic_private_dynamics(24, 16, seed=0)
    test, _ = synthetic_private_dynamics(4, 16, seed=1)
    gap = np.zeros(test.shape, bool)
    gap[:, 6:10] = True
    for name, reads in (("ridge+mvrnn", False), ("ridge+mvrnn-own", True)):
        pyro.clear_param_store()
        model = build_imputer(name, train, target="b", hidden=8)
        _, standard = fit(model, train, epochs=1, patience=None, progress=False)
        torch.manual_seed(0)
        through_gap, _ = impute(model, standard, test, "b", hidden=gap)
        torch.manual_seed(0)
        whole, _ = impute(model, standard, test, "b")
        assert model.variant == name and np.allclose(through_gap, whole) != reads
