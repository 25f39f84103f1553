"""CLEAR-MOT and identity metrics through py-motmetrics.

Ground truth and hypotheses are matched frame by frame on the IoU distance 1 - IoU, with pairs farther than
1 - ``iou_threshold`` forbidden, exactly as ``motmetrics.utils.compare_to_groundtruth(..., 'iou',
distth=0.5)`` does. We compute the distance matrix with our own :func:`ppl_models.data.mot.iou` instead of
``motmetrics.distances.iou_matrix``, which calls ``np.asfarray`` (removed in NumPy 2).
MOTP is py-motmetrics' mean matched distance (1 - IoU), not the devkit's percentage.
"""

from __future__ import annotations

import numpy as np

from ppl_models.data.mot import MotRecords, iou

METRICS = ["mota", "motp", "idf1", "num_switches", "num_false_positives", "num_misses",
           "mostly_tracked", "mostly_lost", "num_unique_objects", "precision", "recall"]
SHORT_NAMES = {"mota": "MOTA", "motp": "MOTP", "idf1": "IDF1", "num_switches": "IDS",
               "num_false_positives": "FP", "num_misses": "FN", "mostly_tracked": "MT", "mostly_lost": "ML",
               "num_unique_objects": "GT", "precision": "Prcn", "recall": "Rcll"}


def accumulate(gt: MotRecords, hyp: MotRecords, iou_threshold: float = 0.5):
    """A ``motmetrics.MOTAccumulator`` of every frame in which ground truth or hypotheses appear."""
    import motmetrics as mm

    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    acc = mm.MOTAccumulator(auto_id=False)
    for frame in np.union1d(gt.frame, hyp.frame):
        g, h = gt.at_frame(frame), hyp.at_frame(frame)
        dist = 1.0 - iou(g.box, h.box)
        dist[dist > 1.0 - iou_threshold] = np.nan
        acc.update(g.track_id.tolist(), h.track_id.tolist(), dist, frameid=int(frame))
    return acc


def summarize(pairs: dict[str, tuple[MotRecords, MotRecords]], iou_threshold: float = 0.5) -> dict[str, dict]:
    """Metrics per sequence plus an ``OVERALL`` row: {name: {metric: value}} for {name: (gt, hyp)}."""
    import motmetrics as mm

    names = list(pairs)
    accs = [accumulate(gt, hyp, iou_threshold) for gt, hyp in pairs.values()]
    table = mm.metrics.create().compute_many(accs, names=names, metrics=METRICS,
                                             generate_overall=len(names) > 1)
    return {name: {m: float(row[m]) for m in METRICS} for name, row in table.iterrows()}
