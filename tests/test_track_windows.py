import numpy as np
import pytest

from conftest import shared
from ppl_models.data.mot import MotRecords, iou, read_mot, xyxy_to_xywh
from ppl_models.data.track_windows import build_track_windows, simulate_detections, track_segments


@pytest.fixture(scope="module")
def venice():
    gt = read_mot(shared("mot15_train_gt", "Venice-2", "gt", "gt.txt"))
    det = read_mot(shared("mot15_sort_frcnn_det", "Venice-2-det.txt"))
    return gt, det


@pytest.mark.parametrize("length", [60, 120, 300])
def test_windows_hold_n_tracks_in_every_frame(venice, length):
    gt, det = venice
    windows = build_track_windows(gt, num_tracks=3, length=length, stride=length // 2, detections=det,
                                  image_size=(1920, 1080), sequence="Venice-2")
    assert windows, "Venice-2 has windows with 3 people in view for 300 frames"
    for w in windows:
        assert w.tracks.shape == (length, 3, 4) and w.detections.shape == (length, 3, 4)
        assert np.all(np.diff(w.frames) == 1)
        for n, track_id in enumerate(w.track_ids):
            rows = (gt.track_id == track_id) & np.isin(gt.frame, w.frames)
            assert rows.sum() == length  # present in every frame
            np.testing.assert_allclose(xyxy_to_xywh(w.tracks[:, n]), gt.box[rows][np.argsort(gt.frame[rows])])


def test_real_detections_are_matched_by_iou(venice):
    gt, det = venice
    w = build_track_windows(gt, 3, 60, detections=det, match_iou=0.5)[0]
    overlaps = [iou(xyxy_to_xywh(w.detections[t, k]), xyxy_to_xywh(w.tracks[t, w.labels[t, k]]))[0, 0]
                for t, k in zip(*np.nonzero(w.mask))]
    assert min(overlaps) >= 0.5
    assert np.all(w.labels[~w.mask] == -1) and np.all(w.detections[~w.mask] == 0)
    # each detection is one of the detector's boxes of that frame
    t, k = np.argwhere(w.mask)[0]
    frame_boxes = det.at_frame(w.frames[t]).box
    assert np.any(np.all(np.isclose(frame_boxes, xyxy_to_xywh(w.detections[t, k])), axis=1))


def test_detections_are_shuffled_within_frames():
    tracks = np.tile(np.array([[0, 0, 1, 1], [2, 2, 3, 3], [4, 4, 5, 5.0]]), (200, 1, 1))
    _, mask, labels = simulate_detections(tracks, miss_rate=0.0, rng=np.random.default_rng(0))
    assert mask.all()
    assert np.mean(np.all(labels == np.arange(3), axis=1)) < 0.5  # identity order only by chance (1/6)


def test_simulated_miss_rate_and_jitter():
    rng = np.random.default_rng(0)
    tracks = np.tile(np.array([[0, 0, 10, 20.0]]), (20000, 1, 1))
    det, mask, labels = simulate_detections(tracks, jitter=0.1, miss_rate=0.2, rng=rng)
    assert abs(1 - mask.mean() - 0.2) < 0.01
    err = det[mask] - tracks[:, 0][mask[:, 0]]
    np.testing.assert_allclose(err.std(0), [1.0, 2.0, 1.0, 2.0], rtol=0.03)  # 0.1 x (w, h, w, h)


def test_windows_need_enough_tracks():
    from ppl_models.data.mot import MotRecords

    gt = MotRecords(np.arange(1, 61), np.ones(60, int), np.tile([[0, 0, 1, 1.0]], (60, 1)), np.ones(60))
    assert build_track_windows(gt, num_tracks=2, length=60) == []
    assert len(build_track_windows(gt, num_tracks=1, length=60)) == 1
    with pytest.raises(ValueError, match="stride"):
        build_track_windows(gt, 1, 60, stride=0)


def test_min_detection_rate_drops_tracks_no_detector_sees(venice):
    gt, det = venice
    every = build_track_windows(gt, 3, 60, detections=det)
    kept = build_track_windows(gt, 3, 60, detections=det, min_detection_rate=0.8)
    assert 0 < len(kept) < len(every)
    for w in kept:
        detection_rate = (w.labels[:, :, None] == np.arange(3)).any(axis=1).mean(axis=0)  # (N,)
        assert detection_rate.min() >= 0.8


def test_track_segments_never_span_a_gap_and_are_normalised():
    frames = np.r_[1:11, 14:20]  # track 7 leaves the image after frame 10 and comes back at frame 14
    boxes = np.stack([frames * 10.0, np.full(len(frames), 20.0), np.full(len(frames), 5.0),
                      np.full(len(frames), 8.0)], axis=1)
    gt = MotRecords(frames, np.full(len(frames), 7), boxes, np.ones(len(frames)))
    segments, ids = track_segments(gt, length=4, hop=2, image_size=(200, 100))
    # runs of 10 and 6 frames: starts 0, 2, 4, 6 then 0, 2
    assert segments.shape == (6, 4, 4) and np.all(ids == 7)
    np.testing.assert_allclose(np.diff(segments[:, :, 0], axis=1), 0.05)  # 10 px per frame / 200 px
    np.testing.assert_allclose(segments[0, 0], [10 / 200, 20 / 100, 15 / 200, 28 / 100])


def test_mot_trajectory_data_splits_by_track_in_prior_coordinates():
    from ppl_models.dvae.train import prior_data

    train, val = prior_data("trajectory", str(shared("mot15_train_gt", "TUD-Stadtmitte")), segment_hop=10)
    assert train.shape[1:] == (60, 4) and val.shape[1:] == (60, 4) and len(train) > len(val) > 0
    for part in (train, val):  # y points up in the prior's coordinates: the top edge is above the bottom one
        assert bool((part[..., 1] > part[..., 3]).all()) and 0 <= float(part[..., 0].min())
    assert not any(bool((v == t).all()) for v in val for t in train)  # no segment in both
