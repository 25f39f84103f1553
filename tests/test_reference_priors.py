"""The authors' published priors imported as our DVAEs (``ppl-models import-prior``).

Each imported network must compute what the reference network computes: its encoder, prior and decoder are
compared with a numerical twin written independently from the raw state dict (``reference_twins.py``) on
random input. The weights are read from ``../shared/data/reference_priors`` (GPL; never copied here).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from conftest import shared
from ppl_models.cli import main
from ppl_models.dvae.reference import ReferenceImportError, import_prior
from ppl_models.dvae.train import load_prior
from reference_twins import reference_forward

PRIORS = {  # file under reference_priors/ -> (source, twin kind)
    "dvae_se_wsj0/vae/VAE_final_epoch297.pt": ("dvae-se", "dvae_se_vae"),
    "dvae_se_wsj0/dkf/DKF_final_epoch295.pt": ("dvae-se", "dvae_se_dkf"),
    "dvae_se_wsj0/rvae/RVAE_final_epoch294.pt": ("dvae-se", "dvae_se_rvae"),
    "dvae_se_wsj0/srnn/SRNN_final_epoch280.pt": ("dvae-se", "dvae_se_srnn"),
    "mixdvae/model_mot.pt": ("mixdvae", "mixdvae_srnn_mot"),
    "mixdvae/model_scass_wsj.pt": ("mixdvae", "mixdvae_srnn_scass"),
    "mixdvae/model_scass_cbf.pt": ("mixdvae", "mixdvae_srnn_scass"),
}


def our_forward(dvae, x, z) -> dict:
    """The same quantities as the twin from our model: q and p of z_t given z_{<t} (teacher-forced), decoder."""
    B, T, _ = x.shape
    ctx = dvae._context(x)
    q_loc, q_scale = dvae.latent(dvae.guide_latent(x, ctx), B, T, x.device).params(z)
    prior = dvae.prior_latent(x, ctx)
    p_loc, p_scale = ((torch.zeros_like(z), torch.ones_like(z)) if prior is None
                      else dvae.latent(prior, B, T, x.device).params(z))
    dec = dvae.decoder_params(z, x, ctx)
    if dvae.likelihood.kind == "gaussian":  # ours: (mean, log std); the reference's: (mean, log variance)
        loc, log_scale = dec.chunk(2, dim=-1)
        dec = torch.cat([loc, 2 * log_scale], dim=-1)
    return {"q_loc": q_loc, "q_logvar": 2 * q_scale.log(), "p_loc": p_loc, "p_logvar": 2 * p_scale.log(), "dec": dec}


@pytest.mark.parametrize("name", list(PRIORS))
def test_imported_network_equals_its_numerical_twin(name):
    path = shared("reference_priors", name)
    source, kind = PRIORS[name]
    dvae = import_prior(source, path).double()  # in float64, so that 1e-5 is far above rounding at any thread count
    generator = torch.Generator().manual_seed(0)
    scale = 1.0 if dvae.x_dim == 4 else 5.0  # boxes in [0, 1]; powers of a peak-normalised signal
    x = scale * torch.rand(3, 9, dvae.x_dim, generator=generator, dtype=torch.float64)
    z = torch.randn(3, 9, dvae.z_dim, generator=generator, dtype=torch.float64)
    state = {k: v.double() for k, v in torch.load(path, map_location="cpu", weights_only=True).items()}
    twin = reference_forward(kind, state, x, z)
    ours = our_forward(dvae, x, z)
    for key, value in twin.items():
        torch.testing.assert_close(ours[key], value, atol=1e-5, rtol=1e-5, msg=lambda m: f"{name} {key}: {m}")


def test_import_prior_cli_writes_a_checkpoint_that_loads_as_a_prior(tmp_path, capsys):
    path = shared("reference_priors", "dvae_se_wsj0/rvae/RVAE_final_epoch294.pt")
    out = tmp_path / "rvae-wsj0.pt"
    assert main(["import-prior", "--from", "dvae-se", "--checkpoint", str(path), "--out", str(out)]) == 0
    assert "rvae-noncausal" in capsys.readouterr().out
    prior = load_prior(out)
    direct = import_prior("dvae-se", path)
    x = torch.rand(1, 20, 513)
    torch.testing.assert_close(prior.reconstruct(x), direct.reconstruct(x))
    assert prior.inputs == "power" and not prior.causal


def test_a_config_that_does_not_fit_the_weights_names_the_tensor_and_both_shapes(tmp_path):
    folder = shared("reference_priors", "dvae_se_wsj0", "srnn")
    config = (folder / "config.ini").read_text().replace("dense_x_h = 256", "dense_x_h = 128")
    (tmp_path / "config.ini").write_text(config)
    with pytest.raises(ReferenceImportError, match=r"embed_x\.0\.weight.*\(128, 513\).*\(256, 513\)"):
        import_prior("dvae-se", folder / "SRNN_final_epoch280.pt", config=tmp_path / "config.ini")


def test_import_errors_name_the_file(tmp_path, capsys):
    folder = shared("reference_priors", "mixdvae")
    shutil.copy(folder / "model_mot.pt", tmp_path / "model_other.pt")  # a temporary copy, deleted with tmp_path
    with pytest.raises(ReferenceImportError, match="cfg_dvae_single_other.ini beside it; pass --config"):
        import_prior("mixdvae", tmp_path / "model_other.pt")
    (tmp_path / "bad.pt").write_text("not a checkpoint")
    assert main(["import-prior", "--from", "mixdvae", "--checkpoint", str(tmp_path / "bad.pt"),
                 "--config", str(folder / "cfg_dvae_single_mot.ini"), "--out", str(tmp_path / "o.pt")]) == 2
    assert "bad.pt: not a readable state dict" in capsys.readouterr().err
    assert not (tmp_path / "o.pt").exists()


def test_the_imported_trajectory_prior_reads_boxes_in_the_layout_it_was_trained_on():
    """The tracker's front end for MixDVAE's prior: boxes (x1, y1, x2, y1 - h), x / width and y / height.

    The authors' generator (data/mot_generate_synthetic_data.py) writes (x, y, x + w, y - h) in [0, 1] units, which
    their trainer reads unscaled (normalize_range 1 in cfg_dvae_single_mot.ini); their MOT17 windows
    (mot_tracking_data_generation.py) are (x, y, x + w, y - h) in pixels with y down, divided per axis by 1920 and
    1080 (cfg_dvae_vem_mot.ini). The prior's own likelihood tells its layout: on ground-truth tracks of our windows
    converted as the tracker converts them it scores -3.8 nats per coordinate, 1.3 nats better than one divisor
    for both axes and ~80 and ~3400 better than the image boxes unconverted or x and y swapped. (That the
    network reads positions, not displacements, is in its code: mlp_x_h reads the box x_{t-1} itself.)"""
    from ppl_models.data.synthetic import synthetic_tracking_window
    from ppl_models.data.mot import to_prior_coords

    prior = import_prior("mixdvae", shared("reference_priors", "mixdvae", "model_mot.pt"))
    image = np.concatenate([synthetic_tracking_window(3, 60, seed=2000 + b).tracks.transpose(1, 0, 2)
                            for b in range(10)])  # (30, T, 4): x1, y1, x2, y2 in [0, 1], y down
    ours = to_prior_coords(image, prior.box_frame)

    def nats(boxes) -> float:  # -log p(x_t | z, x_{<t}) per coordinate, z the encoder's mean path
        x = torch.as_tensor(boxes, dtype=torch.float32)
        with torch.no_grad():
            ctx = prior._context(x)
            return -prior.likelihood(prior.decoder_params(prior.encode(x, ctx), x, ctx)).log_prob(x).mean().item()

    wrong = {"image boxes unconverted (y2 = y1 + h)": image, "x and y swapped": ours[..., [1, 0, 3, 2]],
             "x and y both divided by the width": ours * np.array([1, 1080 / 1920, 1, 1080 / 1920])}
    right = nats(ours)
    for name, boxes in wrong.items():
        assert nats(boxes) > right + 0.5, (name, nats(boxes), right)


def _covered(windows, estimates, frame: str) -> tuple[np.ndarray, np.ndarray]:
    """Per (window, frame, track): whether some source's box overlaps the track's with IoU >= 0.5, and whether
    the track was detected in that frame."""
    from ppl_models.data.mot import iou, xyxy_to_xywh
    from ppl_models.data.mot import to_prior_coords

    covered, detected = [], []
    for w, est in zip(windows, estimates):
        boxes = to_prior_coords(est, frame)  # (N, T, 4), y down
        for t in range(len(w.frames)):
            overlap = iou(xyxy_to_xywh(w.tracks[t]), xyxy_to_xywh(boxes[:, t]))  # (tracks, sources)
            covered += list(overlap.max(1) >= 0.5)
            detected += [bool((w.labels[t] == j).any()) for j in range(w.tracks.shape[1])]
    return np.array(covered), np.array(detected)


def test_the_imported_trajectory_prior_tracks_synthetic_windows():
    """MixDVAE's own prior (boxes with y down, box_frame "y-down") inside our tracker, no identity switch.

    MOTA 0.81 (our shipped srnn-trajectory: 0.98), short of the aim of 0.9, and the prior's fault, not the
    front end's (the test above): 99.8 % of the boxes with a detection are tracked, while 93 % of those *without*
    one (10 % missed) are lost, each a miss and a false positive. The prior predicts a box ~6x worse than
    holding the last one (one-step RMSE 9.4e-3 against 1.7e-3; constant velocity 2.9e-4), on the authors' own
    kind of trajectories as on ours (1.05e-2 there), and in a frame without a detection the E-S step, iterated,
    feeds the decoder its own reconstruction, which drifts to 0.15 off (5 box widths) in 40 iterations. With no
    missed detections the same fit scores MOTA 1.00. The paper's VEM settings (detection std 0.04 x box, 70
    iterations after a chunked start of 20 per 30 frames) do not help: 0.81, and the authors' VEM loop itself,
    re-implemented for the check (their tempered E-W, first frame pinned), scores 0.81 too."""
    import pyro

    from ppl_models.data.synthetic import synthetic_tracking_window
    from ppl_models.mixdvae import MixDVAE, fit
    from ppl_models.mixdvae.tracking import evaluate_windows, initial_sources, windows_to_tensors

    prior = import_prior("mixdvae", shared("reference_priors", "mixdvae", "model_mot.pt"))
    assert prior.box_frame == "y-down"
    windows = [synthetic_tracking_window(3, 60, miss_rate=0.1, seed=1000 + b) for b in range(6)]
    obs, mask = windows_to_tensors(windows, frame=prior.box_frame)
    pyro.set_rng_seed(0)
    result = fit(MixDVAE(prior, 3), obs, mask, initial_sources(obs, mask, 3), guide="vem", iterations=40)
    metrics = evaluate_windows(windows, result.sources.numpy(), frame=prior.box_frame)["OVERALL"]
    assert metrics["mota"] >= 0.8 and metrics["num_switches"] == 0, metrics
    covered, detected = _covered(windows, result.sources.numpy(), prior.box_frame)
    assert covered[detected].mean() >= 0.99, (covered[detected].mean(), covered[~detected].mean())


def test_box_frames_are_their_own_inverse_and_keep_the_box_height():
    import numpy as np

    from ppl_models.data.mot import to_prior_coords

    boxes = np.array([[0.1, 0.2, 0.3, 0.5]])  # x1, y1, x2, y2 with y down: height 0.3
    for frame in ("y-up", "y-down"):
        np.testing.assert_allclose(to_prior_coords(to_prior_coords(boxes, frame), frame), boxes)
    np.testing.assert_allclose(to_prior_coords(boxes, "y-down"), [[0.1, 0.2, 0.3, -0.1]])  # y2 = y1 - h
    np.testing.assert_allclose(to_prior_coords(boxes, "y-up"), [[0.1, 0.8, 0.3, 0.5]])
