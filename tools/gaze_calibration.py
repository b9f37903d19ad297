"""Measure the gain with which openvasa reads gaze back from rendered video.

Renders short clips of the astronaut whose gaze jumps between two known directions while the
head sways, writes them as H.264 MP4 like any output, measures them with the evaluation's
face signals (MediaPipe tracking, iris tracking, the latent-space encoder), and fits
read = gain × commanded per axis. MediaPipe moves its face points a little along with the
iris, so the eyeball centre the encoder infers moves with it and the gaze reads short; the
fitted gains are `GAZE_READ_GAIN` in openvasa/latent/face_latent.py, which the encoder
divides out: with them in place this prints gains near 1 (set them to 1 to measure afresh).

python tools/gaze_calibration.py [N_CLIPS]
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
from skimage import data

from openvasa.audio import Audio
from openvasa.evaluation.signals import face_signals
from openvasa.latent.motion import MotionSequence
from openvasa.pipeline import Generator, StageTimes

FPS = 25.0
SECONDS = 4.0
SETTLE_S = 0.2  # frames this soon after a jump are left out


def clip_motion(portrait, rng: np.random.Generator, axis: int, amplitude: float):
    n = int(SECONDS * FPS)
    t = np.arange(n) / FPS
    motion = MotionSequence.neutral(n, FPS)
    motion.pose[:] = portrait.latent.pose0
    motion.blendshapes[:] = portrait.latent.dynamics0
    phases = rng.uniform(0, 2 * np.pi, 3)
    for j, (size, hz) in enumerate(((6.0, 0.3), (4.0, 0.25), (3.0, 0.2))):
        motion.pose[:, j] += size * np.sin(2 * np.pi * hz * t + phases[j])
    side = np.where((t // 1.0) % 2 == 0, 1.0, -1.0)
    motion.gaze[:, axis] = side * amplitude
    return motion, side, (t % 1.0) > SETTLE_S


def main(n_clips: int) -> None:
    generator = Generator()
    rng = np.random.default_rng(11)
    rows = {0: [], 1: []}
    silence = Audio(np.zeros(int(SECONDS * 16000), np.float32), 16000)
    with tempfile.TemporaryDirectory() as folder:
        for i in range(n_clips):
            size = int(rng.choice([256, 384, 512]))
            distance = float(rng.choice([0.8, 1.0, 1.25]))
            axis = i % 2
            amplitude = float(rng.uniform(6, 15) if axis == 0 else rng.uniform(5, 10))
            portrait = generator.prepare_portrait(
                data.astronaut(), size=size, head_distance=distance
            )
            motion, side, settled = clip_motion(portrait, rng, axis, amplitude)
            video = Path(folder) / f"clip{i}.mp4"
            generator.write_outputs(portrait, motion, silence, video, None, None, StageTimes())
            gaze = face_signals(video).gaze[: len(motion), axis]
            high = np.nanmean(gaze[settled & (side > 0)])
            low = np.nanmean(gaze[settled & (side < 0)])
            gain = (high - low) / (2 * amplitude)
            rows[axis].append(gain)
            print(
                f"clip {i}: {size} px, distance {distance}, {('yaw', 'pitch')[axis]} "
                f"±{amplitude:.1f}° reads {low:+.1f}…{high:+.1f}° → gain {gain:.3f}"
            )
    for axis, name in enumerate(("yaw", "pitch")):
        gains = np.array(rows[axis])
        print(f"gaze {name}: gain {gains.mean():.3f} ± {gains.std():.3f} over {len(gains)} clips")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
