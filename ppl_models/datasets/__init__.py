"""Experiment sets built from the real recordings of ``../shared/data``, one module per benchmark.

Each builder reads its folders, splits them (by speaker, recording or sequence) and returns arrays in one of the
file contracts of :mod:`ppl_models.data` (multi-sensor ``.npz``, MOT windows, noisy-speech folders):

    noisy_speech     clean speech + real noise at set SNRs, for enhancement (``export-noisy-speech``)
    speech_activity  audio / image / flow sensors of who speaks when, for fusion
                     (``export-fusion --dataset speech-activity``)
    mouth_video      the generated mouth camera that speech_activity uses
    physio_beats     heart-beat detection from ECG and PPG (PLETH) of a PhysioNet record
                     (``export-fusion --dataset beats``)
    physionet        PhysioNet windows with masked gaps, for imputation (``export-physionet``)
    av_speech        audio + mouth features of speech, for imputation (``export-av-speech``)
    mot17_windows    MOT17 windows with occlusion-aware simulated detections, for tracking benchmarks

:mod:`ppl_models.data` keeps the generic readers, writers, front ends and synthetic generators that these use;
nothing there imports from here.
"""
