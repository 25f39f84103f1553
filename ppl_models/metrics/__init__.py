"""Metrics: audio quality (SI-SDR, RMSE, PESQ, ESTOI) and multi-object tracking (CLEAR MOT, IDF1)."""
