"""What every `openvasa` subcommand shares on the terminal: the gaze argument's parser and
the progress bar. The command modules (`openvasa.cli`, `evaluation.cli`, `diffusion.cli`)
import it; it imports none of them."""

from __future__ import annotations

import argparse


def gaze_argument(text: str) -> tuple[float, float]:
    """`YAW,PITCH` in degrees → (yaw, pitch); argparse's error for anything else."""
    try:
        yaw, pitch = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("gaze must be YAW,PITCH in degrees, e.g. 10,-5") from None
    return yaw, pitch


def progress_bar(enabled: bool, description: str, unit: str = "frame"):
    """(update(done, total), bar) for a tqdm bar on stderr, or (None, None) when disabled.

    Close the bar with `bar.close()` when the work ends."""
    if not enabled:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=0, unit=unit, desc=description, leave=False, dynamic_ncols=True, disable=None)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar
