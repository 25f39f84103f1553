"""The ridge baseline of imputation: ordinary least squares on the context design, k chosen on validation,
the target never read, missing inputs handled by their flags."""

import numpy as np
import pytest

from ppl_models.data.fusion_files import FusionData
from ppl_models.multimodal.imputation import build_imputer, fit, impute, imputation_scores
from ppl_models.multimodal.ridge import RidgeImputer, context_design


def lagged(n: int, T: int, lag: int, seed: int, noise: float = 0.1) -> FusionData:
    """u: a random walk per sequence (2 dims); y_t = A u_{t+lag} + noise: the target needs the inputs' future."""
    rng = np.random.default_rng(seed)
    u = np.cumsum(rng.normal(size=(n, T + lag, 2)), 1) * 0.3
    y = u[:, lag:] @ np.array([[1.0, -0.5, 0.2], [0.3, 0.8, -1.0]]) + noise * rng.normal(size=(n, T, 3))
    mask = (rng.random((n, T)) > 0.1).astype(np.float32)  # 10 % of the input frames missing
    return FusionData({"u": u[:, :T].astype(np.float32), "y": y.astype(np.float32)}, masks={"u": mask})


def test_ridge_equals_numpys_least_squares_on_the_same_design():
    data = lagged(12, 40, 2, seed=0)
    x, mask = data.sensors, {m: data.mask(m) for m in data.names}
    model = RidgeImputer({"u": 2, "y": 3}, "y", contexts=(3,), alpha=0.0)
    model.fit_closed_form(x, mask)
    design = context_design(x, mask, ["u"], 3)
    assert design.shape == (12, 40, 7 * 3 + 1)  # 7 frames of [u (2), flag], and the intercept
    expected, *_ = np.linalg.lstsq(design.reshape(-1, 22), data.sensors["y"].reshape(-1, 3), rcond=None)
    np.testing.assert_allclose(model.weight, expected, rtol=1e-6, atol=1e-8)
    residual = data.sensors["y"].reshape(-1, 3) - design.reshape(-1, 22) @ expected
    np.testing.assert_allclose(model.noise, np.sqrt((residual ** 2).mean(0)), rtol=1e-6)
    # a missing input frame reads as zeros and a zero flag, whatever value it holds
    x2 = {"u": np.where(mask["u"][..., None] > 0, x["u"], 123.0), "y": x["y"]}
    np.testing.assert_array_equal(context_design(x2, mask, ["u"], 3), design)


def test_ridge_chooses_the_context_on_validation_and_never_reads_the_target():
    train, test = lagged(60, 50, 2, seed=1), lagged(10, 50, 2, seed=2)
    model = build_imputer("ridge", train, target="y")
    _, standard = fit(model, train, seed=0, progress=False)
    assert model.k >= 2  # the target follows the inputs' future by 2 frames: k = 0 or 1 cannot see it
    mean, std = impute(model, standard, test, "y")
    scores = imputation_scores(test.sensors["y"], mean, std, test.mask("y"))
    now = RidgeImputer({"u": 2, "y": 3}, "y", contexts=(0,))  # the same frame only
    _, now_standard = fit(now, train, seed=0, progress=False)
    now_scores = imputation_scores(test.sensors["y"], *impute(now, now_standard, test, "y"), test.mask("y"))
    assert scores["rmse"] < 0.75 * now_scores["rmse"] and 0.9 < scores["coverage"] < 0.995
    blind = FusionData({"u": test.sensors["u"], "y": np.zeros_like(test.sensors["y"])}, masks=test.masks)
    np.testing.assert_allclose(impute(model, standard, blind, "y")[0], mean, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="ridge needs a target"):
        build_imputer("ridge", train, target="z")


def test_residual_default_falls_back_to_the_marginal_where_an_input_leaves_its_training_range():
    train, test = lagged(40, 30, 2, seed=3), lagged(4, 30, 2, seed=4)
    model = build_imputer("ridge+lds", train, target="y")
    _, standard = fit(model, train, epochs=2, seed=0, progress=False)
    mean, std = impute(model, standard, test, "y")
    spiked = FusionData({"u": test.sensors["u"].copy(), "y": test.sensors["y"]}, masks=test.masks)
    spiked.sensors["u"][0, 20] = 50.0  # an artifact far outside the training range
    spiked.masks["u"][0, 20] = 1.0
    s_mean, s_std = impute(model, standard, spiked, "y")
    k = model.ridge.k
    around = slice(20 - k, 21 + k)
    np.testing.assert_allclose(s_mean[0, around], np.broadcast_to(standard.loc["y"], s_mean[0, around].shape), rtol=1e-5)
    np.testing.assert_allclose(s_std[0, around], np.broadcast_to(standard.scale["y"], s_std[0, around].shape), rtol=1e-5)
    np.testing.assert_allclose(s_mean[0, :20 - k], mean[0, :20 - k], rtol=1e-4, atol=1e-5)  # the past: unchanged
    np.testing.assert_allclose(s_mean[1:], mean[1:], rtol=1e-4, atol=1e-5)
    assert not np.allclose(mean[0, around], s_mean[0, around])
