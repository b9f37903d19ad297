"""Evaluation: signals of talking-face videos (ours or real), metrics, plots and the suite
behind `openvasa eval`."""

from openvasa.evaluation.metrics import SyncResult, VideoMetrics, delta_p, lip_sync, video_metrics
from openvasa.evaluation.signals import FaceSignals, SpeechSignals, face_signals, speech_signals
from openvasa.evaluation.suite import EvaluationReport, evaluate_videos, run_suite

__all__ = [
    "EvaluationReport",
    "FaceSignals",
    "SpeechSignals",
    "SyncResult",
    "VideoMetrics",
    "delta_p",
    "evaluate_videos",
    "face_signals",
    "lip_sync",
    "run_suite",
    "speech_signals",
    "video_metrics",
]
