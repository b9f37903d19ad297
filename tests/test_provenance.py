"""Provenance: the watermark in every frame, the AI-generated label, `openvasa verify`.

The statistics the issue asks for (hundreds of clips, thousands of negatives) come from
tools/watermark_stats.py; these tests are the same measurements on a few real clips.
"""

import numpy as np
import pytest
from PIL import Image
from skimage import data

from openvasa import __version__
from openvasa.audio import Audio, save_wav
from openvasa.cli import main
from openvasa.errors import OpenvasaError
from openvasa.io.video import read_video
from openvasa.provenance import (
    Payload,
    Watermarker,
    attacks,
    detect_watermark,
    key_id,
    provenance_metadata,
    verify_file,
    watermarker_for,
)
from openvasa.provenance.watermark import MAX_STEP
from openvasa.settings import Controls, OutputSettings


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


# --- payload ---------------------------------------------------------------------------------


def test_payload_round_trips_and_the_crc_rejects_a_flipped_bit():
    payload = Payload.for_version("0.1.0", "studio-7")
    bits = payload.to_bits()
    assert bits.shape == (64,) and set(np.unique(bits)) == {-1.0, 1.0}
    assert Payload.from_bits(bits) == payload
    assert payload.version == "0.1" and payload.key_id == key_id("studio-7") != 0
    for index in (0, 20, 40, 63):  # mark, version, key, CRC
        flipped = bits.copy()
        flipped[index] *= -1
        assert Payload.from_bits(flipped) is None
    assert Payload.for_version("0.1.0").key_id == 0
    assert Payload.for_version("3.12.5").version == "3.12"


# --- embedding -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def talking_frames(generator, portrait, speech):
    """50 unmarked frames (2 s at 25 fps) of the astronaut speaking, 512x512."""
    motion = generator.motion(portrait, speech.audio, Controls(seed=3))
    return np.stack([portrait.renderer.render(motion.frame(i)).copy() for i in range(50)])


@pytest.fixture(scope="module")
def marked_frames(talking_frames):
    marker = watermarker_for()
    marked = talking_frames.copy()
    for frame in marked:
        marker.apply(frame)
    return marked


def test_the_mark_is_faint_bounded_and_in_luminance_only(talking_frames, marked_frames):
    values = [psnr(m, c) for m, c in zip(marked_frames, talking_frames, strict=True)]
    assert min(values) >= 40.0, values
    change = marked_frames.astype(int) - talking_frames
    assert np.abs(change).max() <= MAX_STEP
    assert np.count_nonzero(change) > 0.3 * change.size  # spread over the frame, not a corner
    # Luminance only: the same step on R, G and B wherever no channel hit 0 or 255.
    inside = ((marked_frames > 0) & (marked_frames < 255)).all(axis=3)
    assert np.array_equal(change[..., 0][inside], change[..., 1][inside])
    assert np.array_equal(change[..., 0][inside], change[..., 2][inside])


def test_marking_is_in_place_and_repeatable(talking_frames):
    marker = watermarker_for()
    frame = talking_frames[7].copy()
    assert marker.apply(frame) is frame
    again = talking_frames[7].copy()
    marker.apply(again)
    assert np.array_equal(frame, again)
    assert not np.array_equal(frame, talking_frames[7])


def test_small_and_odd_frames_are_marked_or_left_alone():
    marker = watermarker_for()
    for shape in ((256, 256, 3), (270, 480, 3), (1080, 1920, 3)):
        frame = np.full(shape, 120, np.uint8)
        frame[::7] = 90  # some texture
        before = frame.copy()
        marker.apply(frame)
        assert psnr(frame, before) >= 40.0
        assert detect_watermark([frame], search=False).found, shape
    tiny = np.full((96, 96, 3), 120, np.uint8)  # fewer pixels than chips: no mark fits
    assert np.array_equal(marker.apply(tiny.copy()), tiny)


# --- detection -------------------------------------------------------------------------------


def test_found_in_a_clip_after_h264_crf28_and_a_256px_downscale(talking_frames, marked_frames):
    written = attacks.h264(marked_frames, crf=20, preset="veryfast")  # as openvasa writes it
    attacked = attacks.reencode_downscaled(written, size=256, crf=28)
    assert attacked.shape == (50, 256, 256, 3)
    found = detect_watermark(attacked)
    assert found.found and found.p_false < 1e-6
    assert found.scale == 1.0 and found.shift == (0, 0)
    assert found.payload == Payload.for_version(__version__)
    # Most of the 64 bits still read by sign alone. How many depends on the frames, and so on
    # the motion model and the last bits of its arithmetic: with motion model v6, 56 with one
    # torch thread, 55 with two, 53 in a full CI run (v5: 58 and 55).
    assert found.bits_read >= 50
    plain = attacks.reencode_downscaled(attacks.h264(talking_frames, crf=20, preset="veryfast"))
    missing = detect_watermark(plain)
    assert not missing.found and missing.payload is None and missing.p_false > 0.01
    # At the geometry openvasa writes, unmarked content scores like noise; the mark scores
    # z 8.3-8.6 run alone (v5's and v6's frames alike) and 7.8 in one full CI run.
    assert detect_watermark(plain, search=False).z < 4.0 < 7.0 < found.z


def test_found_after_a_10_percent_crop_and_in_a_screen_recording(marked_frames):
    written = attacks.h264(marked_frames[:12], crf=20, preset="veryfast")
    cropped = detect_watermark(attacks.h264(attacks.crop(written, 0.1), crf=28))
    assert cropped.found
    assert cropped.scale == pytest.approx(512 / 460, rel=0.005)  # 460: the crop, even
    recorded = detect_watermark(attacks.h264(attacks.screen_recording(written), crf=28))
    assert recorded.found
    # 512 px shown at 768 in a 1280-wide screen: chips are 768/1280 of the expected size.
    assert recorded.scale == pytest.approx(768 / 1280, rel=0.005)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "camera"])
def test_not_found_in_photos_from_scikit_image(name):
    image = getattr(data, name)()
    result = detect_watermark([image])
    assert not result.found and result.payload is None
    assert result.p_false > 1e-3


def test_not_found_in_synthetic_images():
    rng = np.random.default_rng(4)
    noise = rng.normal(128, 30, (256, 256, 3)).clip(0, 255).astype(np.uint8)
    stripes = np.zeros((200, 300, 3), np.uint8)
    stripes[:, ::6] = 255
    flat = np.full((256, 256, 3), 77, np.uint8)
    for image in (noise, stripes, flat):
        assert not detect_watermark([image]).found


def test_a_keyed_mark_is_found_with_or_without_the_key(talking_frames):
    marker = Watermarker(Payload.for_version(__version__, "my studio"))
    frames = talking_frames[:10].copy()
    for frame in frames:
        marker.apply(frame)
    with_key = detect_watermark(frames, key="my studio", search=False)
    assert with_key.found and with_key.key_matched
    assert with_key.payload.key_id == key_id("my studio")
    without = detect_watermark(frames, search=False)
    assert without.found and not without.key_matched
    assert without.payload.key_id == key_id("my studio")  # read from the bits themselves
    wrong = detect_watermark(frames, key="someone else", search=False)
    assert wrong.found and not wrong.key_matched


# --- pipeline, files, CLI --------------------------------------------------------------------


def test_generator_marks_every_frame_unless_switched_off(portrait, talking_frames):
    from openvasa.pipeline import Generator

    on = Generator(OutputSettings())
    off = Generator(OutputSettings(watermark=False))
    motion = portrait.latent.motion0
    marked = on.render_frame(portrait, motion).copy()
    plain = off.render_frame(portrait, motion).copy()
    assert np.array_equal(plain, portrait.renderer.render(motion))
    assert not np.array_equal(marked, plain)
    assert detect_watermark([marked], search=False).found
    assert not detect_watermark([plain], search=False).found


def test_settings_refuse_a_key_without_the_watermark():
    with pytest.raises(OpenvasaError, match="needs the watermark"):
        OutputSettings(watermark=False, watermark_key="x")
    with pytest.raises(OpenvasaError, match="empty"):
        OutputSettings(watermark_key="  ")


def test_metadata_labels_the_file_as_ai_generated():
    tags = provenance_metadata(True, "k")
    assert "AI-generated" in tags["comment"] and tags["ai_generated"] == "true"
    assert key_id("k") == int(tags["watermark"].rsplit(" ", 1)[1], 16)
    assert provenance_metadata(False)["watermark"].startswith("none")


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory, astronaut, speech):
    folder = tmp_path_factory.mktemp("provenance")
    portrait = folder / "astronaut.png"
    Image.fromarray(astronaut).save(portrait)
    audio = folder / "speech.wav"
    clip = speech.audio
    save_wav(Audio(clip.samples[: 2 * clip.sample_rate], clip.sample_rate), audio)
    common = ["--size", "256", "-q"]
    marked = folder / "marked.mp4"
    assert main(["generate", str(portrait), str(audio), "-o", str(marked), *common]) == 0
    keyed = folder / "keyed.mp4"
    frames = folder / "frames"
    args = ["-o", str(keyed), "--frames", str(frames), "--watermark-key", "lab", *common]
    assert main(["generate", str(portrait), str(audio), *args]) == 0
    plain = folder / "plain.mp4"
    args = ["-o", str(plain), "--no-watermark", *common]
    assert main(["generate", str(portrait), str(audio), *args]) == 0
    return folder, marked, keyed, plain, frames


def test_verify_finds_the_mark_in_a_generated_video(cli_files, capsys):
    _, marked, _, _, _ = cli_files
    assert main(["verify", str(marked)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{marked}: openvasa watermark FOUND")
    assert f"openvasa {Payload.for_version(__version__).version}, no key" in line
    assert "labelled AI-generated" in line
    report = verify_file(marked)
    assert report.found and report.labelled and report.kind == "video"
    # Untouched, nearly every bit reads by sign alone (64 with v5's frames; 63 in one full CI
    # run with v6's, z 15.9): the payload is decoded from all of them together.
    assert report.detection.bits_read >= 62


def test_verify_reads_the_key_and_finds_the_mark_in_png_frames(cli_files, capsys):
    _, _, keyed, _, frames = cli_files
    assert main(["verify", str(keyed), "--key", "lab", "--no-search"]) == 0
    assert "(matches --key)" in capsys.readouterr().out
    png = sorted(frames.glob("*.png"))
    assert len(png) == 50
    report = verify_file(png[10], key="lab", search=False)  # one frame alone is enough
    assert report.found and report.kind == "image" and report.detection.key_matched


def test_verify_says_not_found_without_the_mark(cli_files, capsys):
    folder, marked, _, plain, _ = cli_files
    assert main(["verify", str(plain)]) == 1
    out = capsys.readouterr().out
    # The label stays: --no-watermark does not make a video look camera-made.
    assert "no openvasa watermark found" in out and "labelled AI-generated" in out
    frames, _ = read_video(plain)
    assert not detect_watermark(frames, search=False).found
    # Several files: 0 only when every one carries the mark.
    assert main(["verify", str(marked), str(plain), "--no-search"]) == 1


def test_verify_reports_bad_files_in_one_line(cli_files, capsys):
    folder, marked, _, _, _ = cli_files
    text = folder / "notes.txt"
    text.write_text("not a video")
    files = [str(folder / "missing.mp4"), str(text), str(marked), "--no-search"]
    assert main(["verify", *files]) == 2
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert errors == [
        f"openvasa: error: {folder / 'missing.mp4'}: no such file.",
        f"openvasa: error: {text}: is neither a readable video nor an image.",
    ]
    assert "watermark FOUND" in captured.out  # the good file is still checked
    assert main(["verify", str(folder)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_bench_has_a_watermark_row():
    from openvasa.bench import run_benchmark

    result = run_benchmark(seconds=1.0, size=256)
    assert result.watermark_s > 0
    row = next(line for line in result.table().splitlines() if line.startswith("watermark"))
    ms_per_frame = float(row.split()[2])
    assert ms_per_frame == pytest.approx(1000 * result.watermark_s / result.n_frames, abs=0.01)
