import numpy as np
import pytest

from conftest import shared
from ppl_models.data.mot import MotRecords, iou, read_mot, read_seqinfo, write_mot, xywh_to_xyxy, xyxy_to_xywh


def test_reads_mot15_ground_truth():
    gt = read_mot(shared("mot15_train_gt", "TUD-Campus", "gt", "gt.txt"))
    assert len(gt) == 359 and len(np.unique(gt.track_id)) == 8
    assert gt.frame.min() == 1 and gt.frame.max() == 71
    np.testing.assert_allclose(gt.box[0], [399, 182, 121, 229])


def test_reads_detections_with_scores():
    det = read_mot(shared("mot15_sort_frcnn_det", "TUD-Campus-det.txt"))
    assert len(det) == 321 and np.all(det.track_id == -1)
    assert 0 < det.score.min() and det.score.max() <= 1


@pytest.mark.parametrize("line, message", [
    ("1,2,3,4,5", "expected at least 6 fields"),
    ("1,2,a,4,5,6", "non-numeric"),
    ("0,1,1,1,1,1", "positive integer"),
    ("1.5,1,1,1,1,1", "positive integer"),
    ("1,1,1,1,-3,1", "negative box"),
    ("1,1,nan,1,1,1", "NaN"),
])
def test_malformed_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.txt"
    path.write_text("1,1,10,10,5,5,1,-1,-1,-1\n\n" + line + "\n")
    with pytest.raises(ValueError, match=message) as info:
        read_mot(path)
    assert "bad.txt:3:" in str(info.value)


def test_results_roundtrip_sorted(tmp_path):
    rec = MotRecords(np.array([2, 1, 1]), np.array([1, 2, 1]), np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 1, 2, 3.5]]),
                     np.ones(3))
    back = read_mot(write_mot(tmp_path / "res.txt", rec))
    np.testing.assert_array_equal(back.frame, [1, 1, 2])
    np.testing.assert_array_equal(back.track_id, [1, 2, 1])
    np.testing.assert_allclose(back.box, rec.box[[2, 1, 0]])


def test_iou_by_hand_and_against_motmetrics():
    a = np.array([[0, 0, 2, 2]])
    b = np.array([[1, 1, 2, 2], [2, 2, 1, 1], [0, 0, 2, 2]])
    np.testing.assert_allclose(iou(a, b), [[1 / 7, 0, 1]])
    from motmetrics.distances import boxiou

    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 10, (20, 4)), rng.uniform(0, 10, (30, 4))
    x[:, 2:] += 0.5
    y[:, 2:] += 0.5
    np.testing.assert_allclose(iou(x, y), boxiou(x[:, None], y[None]), atol=1e-12)


def test_box_conversions_invert():
    box = np.array([[3.0, 4.0, 10.0, 20.0]])
    np.testing.assert_allclose(xywh_to_xyxy(box), [[3, 4, 13, 24]])
    np.testing.assert_allclose(xyxy_to_xywh(xywh_to_xyxy(box)), box)


def test_seqinfo():
    info = read_seqinfo(shared("mot15_train_gt", "TUD-Campus"))
    assert info["imWidth"] == 640 and info["imHeight"] == 480 and info["seqLength"] == 71
