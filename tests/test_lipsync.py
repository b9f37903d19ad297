"""Lip sync against a real speaker: the lag search, M-LMD, and bilabial closures from GRID's
word times."""

import numpy as np
import pytest

from openvasa.errors import OpenvasaError
from openvasa.evaluation.lipsync import (
    ClipLipSync,
    LipSyncReport,
    best_lag_correlation,
    bilabial_windows,
    closure_recall,
    read_align,
)

# GRID's layout: START END WORD in 1/25,000 s ("bin blue at m two please").
ALIGN = """0 14500 sil
14500 20000 bin
20000 26000 blue
26000 30500 at
30500 37750 m
37750 44000 two
44000 52000 please
52000 74500 sil
"""


def test_align_times_and_bilabials(tmp_path):
    path = tmp_path / "bbam2p.align"
    path.write_text(ALIGN)
    words = read_align(path)
    assert words[1] == (0.58, 0.8, "bin")
    windows = bilabial_windows(words)
    # bin, blue, please at their onsets; m at its end; "at" and "two" have none.
    assert len(windows) == 4
    assert windows[0] == pytest.approx((0.48, 0.70))
    assert windows[2] == pytest.approx((1.51 - 0.15, 1.51 + 0.05))


def test_a_broken_align_line_is_named(tmp_path):
    path = tmp_path / "x.align"
    path.write_text("0 100 sil\n100 200\n")
    with pytest.raises(OpenvasaError, match="x.align line 2"):
        read_align(path)


def test_closure_recall_counts_closures_inside_their_windows():
    fps = 25.0
    mouth = np.full(100, 0.08)
    mouth[20:22] = 0.01  # closed at 0.80-0.88 s
    windows = [(0.75, 0.9), (2.0, 2.2)]
    assert closure_recall(mouth, fps, windows, closed_level=0.02) == 0.5
    assert closure_recall(mouth, fps, windows, closed_level=0.005) == 0.0
    assert np.isnan(closure_recall(mouth, fps, [], closed_level=0.02))


def test_best_lag_finds_a_planted_delay():
    rng = np.random.default_rng(0)
    real = np.convolve(rng.normal(size=200), np.ones(4) / 4, mode="same")
    late = np.concatenate([np.zeros(2), real[:-2]])  # the generated mouth 2 frames late
    r, lag, at_zero = best_lag_correlation(late, real)
    assert lag == 2 and r > 0.99 and at_zero < r
    r, lag, _ = best_lag_correlation(real, late)
    assert lag == -2


def test_report_pools_recall_over_bilabials():
    def clip(name, group, r, recall, count):
        return ClipLipSync(name, group, 75, r, 0, r, 2.0, count, recall, 1.0)

    report = LipSyncReport(
        [
            clip("a", "s26", 0.4, 1.0, 3),
            clip("b", "s26", 0.6, 0.0, 1),
            clip("c", "s31", 0.8, 0.5, 2),
        ]
    )
    mean = report.summary(report.clips)
    assert mean["correlation"] == pytest.approx(0.6)
    assert mean["bilabial_recall"] == pytest.approx((3 + 0 + 1) / 6)
    table = report.table()
    assert "| **s26** (2 clips) | | **0.500**" in table and "**mean** (3 clips)" in table


def test_join_speed_ratio_finds_a_step_at_every_window_join():
    from openvasa.evaluation.lipsync import join_speed_ratio
    from openvasa.latent.motion import MotionSequence

    t = np.arange(100)
    smooth = np.sin(t / 7.0)[:, None] * np.ones((1, 6))
    stepped = smooth + 0.5 * (t // 2)[:, None]  # a jump from each 2-frame window to the next
    blend, gaze = np.zeros((100, 52)), np.zeros((100, 2))
    assert join_speed_ratio(MotionSequence(25.0, smooth, blend, gaze), 2) == pytest.approx(
        1, abs=0.1
    )
    assert join_speed_ratio(MotionSequence(25.0, stepped, blend, gaze), 2) > 1.5
