"""MOT17 development windows: occlusion-aware simulated detections and crossing groups."""

import numpy as np
import pytest

from conftest import shared
from ppl_models.data.track_windows import occlusion_detections
from ppl_models.datasets.mot17_windows import crosses, mot17_windows, read_mot17_gt


@pytest.fixture(scope="module")
def mot17_09():
    return read_mot17_gt(shared("mot17_train_gt_part", "gt", "MOT17-09-gt.txt"))


def test_windows_follow_the_protocol(mot17_09):
    gt, visibility = mot17_09
    windows = mot17_windows(gt, visibility, "MOT17-09", (1920, 1080))
    assert windows and sum(crosses(w.tracks) for w in windows) >= 5
    for w in windows:
        assert w.tracks.shape == (60, 3, 4) and (w.frames[0] - 1) % 40 == 0
        for n, track in enumerate(w.track_ids):
            assert (w.labels == n).sum() >= 0.65 * 60
            rows = (gt.track_id == track) & np.isin(gt.frame, w.frames)
            hidden = w.frames[np.isin(w.frames, gt.frame[rows & (visibility < 0.3)])] - w.frames[0]
            assert not np.isin(n, w.labels[hidden]).any()  # never detected while mostly occluded


def test_misses_come_in_bursts():
    rng = np.random.default_rng(0)
    tracks = np.tile(np.array([0.0, 0.0, 10.0, 20.0]), (20000, 1, 1))
    _, mask, _ = occlusion_detections(tracks, np.ones((20000, 1)), miss_rate=0.1, burst=5.0, rng=rng)
    missed = ~mask[:, 0]
    assert abs(missed.mean() - 0.1) < 0.02
    starts = np.sum(missed[1:] & ~missed[:-1])
    assert 4.0 < missed.sum() / starts < 6.0  # mean burst length
