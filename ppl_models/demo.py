"""``ppl-models demo``: the main job on the embedded synthetic default.

It generates the synthetic data sets (box trajectories, an N-track window with missed detections,
speech-like audio, coloured noise, speech + noise and speech + music mixtures), draws them, tracks the
window with MixDVAE and the shipped SRNN prior, tracks a window where two tracks cross under occlusion with
``ppl-models track``'s default and with Kalman + Hungarian (``tracking_vs_kalman.png``), scores the noisy
mixture, and fits the enumerated Gaussian mixture (the smallest assignment model) by SVI, checking it recovers
the true clusters, then trains two small DVAE priors (an SRNN on trajectories, an RVAE on speech-like audio)
and shows what they generate and resynthesise, and finally fuses three synthetic sensors with an attention
mixture whose gate learns to leave the one that fails, imputes a hidden sensor with the MVRNN, and denoises a
noisy utterance without ever seeing clean/noisy pairs (U-NA with the shipped RVAE speech prior). Figures,
audio, checkpoints and ``summary.json`` go to the output folder. It grows as systems land and stays under five
minutes on two CPU cores.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pyro
import torch
from scipy.optimize import linear_sum_assignment

from ppl_models.data.audio import write_audio
from ppl_models.data.synthetic import (colored_noise, mix_at_snr, music_like, sample_trajectories, speech_like,
                                       synthetic_tracking_window)
from ppl_models.infer import train_svi
from ppl_models.infer.svi import make_optimizer
from ppl_models.metrics.audio import score
from ppl_models import plots
from ppl_models.toy.gmm import GaussianMixture

log = logging.getLogger("ppl_models")


def gmm_data(n: int = 600, seed: int = 0):
    """Three well-separated 2-D clusters: (points (n, 2), labels (n,), true means (3, 2))."""
    rng = np.random.default_rng(seed)
    means = np.array([[-4.0, 0.0], [3.0, 3.0], [2.5, -3.5]])
    scales = np.array([1.0, 0.7, 1.2])
    labels = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    points = means[labels] + scales[labels, None] * rng.standard_normal((n, 2))
    return points.astype(np.float32), labels, means


def fit_gmm(points: np.ndarray, device: torch.device, epochs: int = 300, progress: bool = True):
    """Fit the enumerated GMM with the MAP guide; return (model, history, data tensor)."""
    pyro.clear_param_store()
    data = torch.as_tensor(points, device=device)
    gmm = GaussianMixture(num_components=3, dim=2)
    history = train_svi(gmm.model, gmm.guide_map, [data], epochs=epochs,
                        loss=pyro.infer.TraceEnum_ELBO(max_plate_nesting=gmm.max_plate_nesting),
                        optimizer=make_optimizer("adam", lr=0.05), name="gmm", progress=progress)
    return gmm, history, data


def track_window(window, device: torch.device, path: Path, iterations: int = 40) -> dict:
    """MixDVAE (shipped SRNN prior, variational EM, assignments enumerated) on one window: scores and a plot."""
    from ppl_models.dvae.train import load_prior
    from ppl_models.mixdvae import MixDVAE, fit
    from ppl_models.mixdvae.tracking import evaluate_windows, initial_sources, to_prior_coords, windows_to_tensors

    obs, mask = windows_to_tensors([window], device)
    num_sources = window.tracks.shape[1]
    result = fit(MixDVAE(load_prior("srnn-trajectory", device), num_sources), obs, mask,
                 initial_sources(obs, mask, num_sources), guide="vem", iterations=iterations)
    estimates = result.sources[0].cpu().numpy()
    plots.plot_tracking_result(window, to_prior_coords(estimates), result.responsibilities[0].cpu().numpy(), path,
                               title=f"MixDVAE, {num_sources} sources")
    metrics = evaluate_windows([window], estimates[None])["OVERALL"]
    return {k: float(metrics[k]) for k in ("mota", "idf1", "num_switches")}


CROSSING_SEED = 177  # a synthetic window in which two tracks overlap, one hidden, and part (checked by `crosses`)


def track_crossing(device: torch.device, path: Path, iterations: int = 50) -> dict:
    """``ppl-models track``'s default (constant-velocity prior, exclusive association, predictive E-W step, Kalman
    start) against the on-line Kalman + Hungarian tracker with the same motion and noise settings, on the synthetic
    window ``CROSSING_SEED`` with occlusion misses (:func:`synthetic_occlusion_window`): scores and the figure
    of both trackers' tracks through the crossing (the baseline's identity switches marked)."""
    from ppl_models.datasets.mot17_windows import crosses
    from ppl_models.data.synthetic import synthetic_occlusion_window
    from ppl_models.mixdvae import MixDVAE, fit
    from ppl_models.mixdvae.baselines import kalman_hungarian
    from ppl_models.mixdvae.motion import ConstantVelocityPrior
    from ppl_models.mixdvae.tracking import (evaluate_windows, identity_switches, initial_sources, kalman_start,
                                             to_prior_coords, windows_to_tensors)

    window = synthetic_occlusion_window(3, 60, seed=CROSSING_SEED)
    obs, mask = windows_to_tensors([window], device)
    init = initial_sources(obs, mask, 3)
    prior, noise = ConstantVelocityPrior(), 0.1  # track's defaults
    result = fit(MixDVAE(prior, 3, noise=noise, association="exclusive", predictive=True), obs, mask,
                 kalman_start(obs, mask, init, accel=prior.accel, noise=noise), iterations=iterations)
    ours = result.sources[0].cpu().numpy()
    theirs = kalman_hungarian(obs, mask, init, noise=noise, accel=prior.accel)[0].numpy()
    switches = identity_switches(window, theirs)
    plots.plot_tracking_comparison(
        window, to_prior_coords(ours), result.responsibilities[0].cpu().numpy(), to_prior_coords(theirs), switches,
        path, ("track's default: constant velocity, exclusive association", "Kalman + Hungarian (same settings)"))
    scores = {}
    for name, estimates in (("default", ours), ("kalman_hungarian", theirs)):
        metrics = evaluate_windows([window], estimates[None])["OVERALL"]
        scores[name] = {k: float(metrics[k]) for k in ("mota", "idf1", "num_switches")}
    return {"seed": CROSSING_SEED, "crosses": crosses(window.tracks), "missed_detections": int((~window.mask).sum()),
            **scores}


def fuse_sensors(device: torch.device, path: Path, seed: int = 0, epochs: int = 60, progress: bool = True) -> dict:
    """The conditional attention mixture against the best single sensor on the synthetic fusion data, and the
    attention figure of one test sequence (the sharp sensor's failures shaded)."""
    from ppl_models.data.synthetic.fusion import synthetic_fusion
    from ppl_models.multimodal.fusion import binary_scores, build_model, expert_predictions, fit, predict

    train, _ = synthetic_fusion(128, 100, seed=seed)
    test, failing = synthetic_fusion(32, 100, seed=seed + 1)
    accuracy = {}
    for name in ["cam", *(f"expert:{n}" for n in test.names)]:
        pyro.clear_param_store()
        model = build_model(name, train)
        fit(model, train, epochs=epochs, device=device, seed=seed, progress=progress)
        p, attention = predict(model, test, device)
        accuracy[name] = binary_scores(test.y, p)["accuracy"]
        if name == "cam":
            cam, cam_p, cam_attention = model, p, attention
    sharp = test.names.index("sharp")
    plots.plot_fusion(test.y[0], cam_p[0], cam_attention[0], test.names, path,
                      experts=expert_predictions(cam, test.subset(slice(0, 1)), device)[0],
                      corrupted={"sharp": failing[0]}, title="Conditional attention mixture, synthetic sensors")
    return {"accuracy": accuracy, "attention_on_sharp_failing": float(cam_attention[..., sharp][failing].mean()),
            "attention_on_sharp_working": float(cam_attention[..., sharp][~failing].mean())}


def impute_sensor(device: torch.device, path: Path, seed: int = 0, epochs: int = 25, progress: bool = True) -> dict:
    """The MVRNN imputes synthetic sensor b through a gap from sensor a (their only link is a shared cause), against
    b's own unimodal prior; the figure shows one test sequence with b hidden in its middle third."""
    from ppl_models.data.synthetic.multimodal import synthetic_multimodal
    from ppl_models.multimodal.imputation import build_imputer, fit, impute, imputation_scores

    train, _ = synthetic_multimodal(160, 40, seed=seed)
    test, _ = synthetic_multimodal(32, 40, seed=seed + 1)
    gap = np.zeros(test.shape, bool)
    gap[:, 13:27] = True  # b is hidden from the model here; elsewhere it sees both sensors
    rmse = {}
    for name in ("mvrnn", "unimodal"):
        pyro.clear_param_store()
        pyro.set_rng_seed(seed)
        model = build_imputer(name, train, target="b", hidden=24)
        _, standard = fit(model, train, epochs=epochs, lr=1e-2, device=device, seed=seed, progress=progress)
        mean, std = impute(model, standard, test, "b", device)  # b hidden everywhere: imputed from a alone
        rmse[name] = imputation_scores(test.sensors["b"], mean, std, test.mask("b"))["rmse"]
        if name == "mvrnn":
            mean, std = impute(model, standard, test, "b", device, hidden=gap)
            plots.plot_imputation(test.sensors["b"][0], mean[0], std[0], gap[0], path, {"a": test.sensors["a"][0]},
                                  title="MVRNN: sensor b through a gap, from sensor a")
    return {"rmse_b_from_a": rmse, "rmse_b_spread": float(test.sensors["b"].std())}


def enhance_speech(device: torch.device, out: Path, seed: int = 0, iterations: int = 150) -> dict:
    """Unsupervised enhancement (U-NA, LV noise model, the shipped RVAE speech prior) of a synthetic speech-like
    utterance in white noise at 0 dB: nothing is trained on clean/noisy pairs; spectrograms before and after."""
    from ppl_models.dvae.train import load_prior
    from ppl_models.enhancement.enhance import enhance

    clean = speech_like(3.0, seed=seed + 3)
    noisy, _ = mix_at_snr(clean, colored_noise(3.0, "white", seed=seed + 4), snr_db=0.0)
    result = enhance([noisy], load_prior("rvae-speech", device), noise_model="lv", iterations=iterations,
                     tol=-np.inf, device=device, seed=seed)
    enhanced = result.signals[0]
    write_audio(out / "enhanced_0dB.wav", np.clip(enhanced, -1, 1))
    plots.plot_spectrograms({"noisy (speech-like + white noise, 0 dB)": noisy,
                             "enhanced (U-NA, LV noise model, RVAE prior)": enhanced, "clean": clean},
                            out / "enhancement_spectrograms.png")
    return {"noisy": score(clean, noisy), "enhanced": score(clean, enhanced), "iterations": result.iterations,
            "seconds": round(result.seconds, 1)}


def run(out_dir: str | Path = "demo_output", device: torch.device = torch.device("cpu"), seed: int = 0,
        progress: bool = True) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    pyro.set_rng_seed(seed)
    summary: dict = {"seed": seed, "device": str(device)}

    # 1. Trajectories and a tracking scene.
    trajectories = sample_trajectories(12, seed=seed)
    plots.plot_trajectories(trajectories, out / "trajectories.png")
    window = synthetic_tracking_window(num_sources=3, length=60, miss_rate=0.15, seed=seed)
    plots.plot_track_window(window, out / "tracking_window.png", title="Synthetic 3-track window")
    summary["tracking_window"] = {"frames": len(window.frames), "sources": int(window.tracks.shape[1]),
                                  "missed_detections": int((~window.mask).sum())}
    summary["tracking"] = track_window(window, device, out / "mixdvae_tracking.png")
    summary["crossing"] = track_crossing(device, out / "tracking_vs_kalman.png")

    # 2. Audio: speech-like, noise, mixtures, and their scores.
    speech = speech_like(4.0, seed=seed)
    noise = colored_noise(4.0, "pink", seed=seed + 1)
    noisy, _ = mix_at_snr(speech, noise, snr_db=0.0)
    music = music_like(4.0, seed=seed + 2)
    with_music, _ = mix_at_snr(speech, music, snr_db=0.0)
    plots.plot_spectrograms({"speech-like (synthetic)": speech, "pink noise": noise,
                             "speech + pink noise, 0 dB": noisy, "speech + music-like, 0 dB": with_music},
                            out / "audio_spectrograms.png")
    for name, signal in {"speech": speech, "noisy_0dB": noisy, "speech_music_0dB": with_music}.items():
        write_audio(out / f"{name}.wav", signal / max(1.0, np.abs(signal).max()))
    summary["noisy_vs_clean"] = score(speech, noisy)

    # 3. The enumerated Gaussian mixture.
    points, labels, true_means = gmm_data(seed=seed)
    gmm, history, data = fit_gmm(points, device, progress=progress)
    resp = gmm.responsibilities(data).detach().cpu().numpy()
    fitted = pyro.param("gmm.locs_map").detach().cpu().numpy()
    row, col = linear_sum_assignment(((fitted[:, None] - true_means[None]) ** 2).sum(-1))
    relabel = dict(zip(row, col))  # fitted component -> true cluster
    map_labels = np.array([relabel[k] for k in gmm.map_assignments(data).cpu().numpy()])
    plots.plot_mixture_fit(points, resp, fitted, true_means, out / "gmm_fit.png")
    plots.plot_elbo(history, out / "gmm_elbo.png", title="GMM: negative ELBO (exact: assignments enumerated)")
    summary["gmm"] = {"final_loss": history.train_loss[-1],
                      "max_mean_error": float(np.abs(fitted[row] - true_means[col]).max()),
                      "map_accuracy": float((map_labels == labels).mean())}

    # 4. Two small DVAE priors (seconds, not minutes): an SRNN on trajectories, an RVAE on speech-like audio.
    from ppl_models.dvae.resynthesis import resynthesize
    from ppl_models.dvae.train import train_prior

    srnn, srnn_history = train_prior("trajectory", "srnn", out / "srnn_trajectory.pt", epochs=15, size=256,
                                     device=device, seed=seed, progress=progress, warmup_epochs=5)
    generated = srnn.generate(60, num=8, device=device).cpu().numpy()
    plots.plot_trajectories(generated, out / "srnn_generated.png",
                            title="Generated by an SRNN after 15 epochs of teacher forcing\n"
                                  "(undertrained: generation drifts to the mean)")
    rvae, rvae_history = train_prior("speech", "rvae", out / "rvae_speech.pt", epochs=40, size=96, device=device,
                                     seed=seed, progress=progress, warmup_epochs=5, hidden=64, rnn_dim=64, lr=3e-3)
    test_speech = speech_like(3.0, seed=seed + 999)  # an utterance the prior has not seen
    resynth = resynthesize(rvae, test_speech, device).numpy()
    plots.plot_spectrograms({"unseen speech-like input": test_speech,
                             "resynthesised through an RVAE prior trained for a few seconds": resynth},
                            out / "rvae_resynthesis.png")
    summary["dvae"] = {"srnn_val_loss": srnn_history.val_loss[-1], "rvae_val_loss": rvae_history.val_loss[-1],
                       "rvae_resynthesis": score(test_speech, resynth)}
    # 5. Sensor fusion: a conditional attention mixture learns which of three sensors to trust.
    summary["fusion"] = fuse_sensors(device, out / "fusion_attention.png", seed=seed, progress=progress)
    # 6. Shared and private latents: the MVRNN imputes a sensor it cannot see from the one it can.
    summary["imputation"] = impute_sensor(device, out / "mvrnn_imputation.png", seed=seed, progress=progress)
    # 7. Unsupervised speech enhancement: a speech prior and a noise model, no clean/noisy pairs.
    summary["enhancement"] = enhance_speech(device, out, seed=seed)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    with open(out / "summary.json", "w") as handle:
        json.dump(summary, handle, indent=2)
    return summary
