"""Plots of one evaluated video (PNG): mouth against speech, head pose, lip-sync curve.

matplotlib runs headless (Agg); figures are written to a temporary file and renamed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from openvasa.evaluation.metrics import SyncResult, resample, silent_frames
from openvasa.evaluation.signals import FaceSignals, SpeechSignals
from openvasa.io.frames import temporary_sibling

PathLike = str | os.PathLike[str]


def plot_video(
    path: PathLike,
    face: FaceSignals,
    speech: SpeechSignals | None = None,
    sync: SyncResult | None = None,
    reference: FaceSignals | None = None,
) -> Path:
    """Write a PNG with three panels and return its path.

    1. mouth opening (face widths) over time against the speech envelope, silent frames
       shaded, the reference video's mouth dashed;
    2. head yaw, pitch and roll (degrees) over time, the reference's dashed;
    3. lip-sync correlation against lag (frames), the chosen offset marked.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    t = face.time_s
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), gridspec_kw={"height_ratios": [3, 3, 2]})
    mouth_ax, pose_ax, sync_ax = axes

    mouth_ax.plot(t, face.mouth_open, color="tab:red", lw=1.4, label="mouth opening")
    if reference is not None:
        n = min(len(face), int(reference.duration_s * face.fps))
        ref_mouth = resample(reference.mouth_open, reference.fps, face.fps, n)
        mouth_ax.plot(t[:n], ref_mouth, "--", color="tab:red", lw=1.0, alpha=0.7, label="reference")
    mouth_ax.set_ylabel("mouth opening (face widths)")
    if speech is not None:
        n = min(len(face), len(speech))
        silent = silent_frames(speech)[:n]
        top = max(float(np.nanmax(face.mouth_open)), 0.05) * 1.1
        mouth_ax.fill_between(
            t[:n], 0, top, where=silent, color="0.85", step="mid", label="silent", lw=0
        )
        envelope_ax = mouth_ax.twinx()
        envelope_ax.plot(
            t[:n], speech.envelope[:n], color="tab:blue", lw=1.0, alpha=0.8, label="speech"
        )
        envelope_ax.set_ylabel("speech envelope", color="tab:blue")
        envelope_ax.set_ylim(0, 1.6)
        mouth_ax.set_ylim(0, top)
    mouth_ax.legend(loc="upper left", fontsize=8)
    mouth_ax.set_title(f"{face.name}: mouth and speech")

    colours = {"yaw": "tab:green", "pitch": "tab:orange", "roll": "tab:purple"}
    for i, (name, colour) in enumerate(colours.items()):
        pose_ax.plot(t, face.pose[:, i], color=colour, lw=1.2, label=name)
        if reference is not None:
            rt = reference.time_s
            pose_ax.plot(rt, reference.pose[:, i], "--", color=colour, lw=0.9, alpha=0.7)
    pose_ax.set_ylabel("head angle (deg)")
    pose_ax.set_xlabel("time (s)")
    title = "head pose" + (" (dashed: reference)" if reference is not None else "")
    pose_ax.set_title(title)
    pose_ax.legend(loc="upper left", fontsize=8, ncol=3)

    if sync is not None and np.isfinite(sync.curve).any():
        sync_ax.plot(sync.lags, sync.curve, "o-", ms=3, color="tab:blue")
        sync_ax.axvline(sync.offset_frames, color="tab:red", lw=1)
        sync_ax.set_title(
            f"lip sync: best offset {sync.offset_frames:+d} frames "
            f"({sync.offset_ms:+.0f} ms), r = {sync.correlation:.2f}"
        )
    else:
        sync_ax.text(0.5, 0.5, "no audio", ha="center", va="center", transform=sync_ax.transAxes)
    sync_ax.set_xlabel("mouth lag behind the speech envelope (frames)")
    sync_ax.set_ylabel("correlation")
    fig.tight_layout()

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        fig.savefig(tmp, dpi=90, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path
