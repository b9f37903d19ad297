"""Framing: close-ups keep the photo's own framing, and what lies past the photo's edge is a
soft extension, never a mirror image (checked by a measure of reflected border detail that
the source photos themselves pass)."""

import cv2
import numpy as np
import pytest

from openvasa.errors import OpenvasaError
from openvasa.face.detect import default_analyzer
from openvasa.face.framing import (
    choose_framing,
    crop_image,
    plan_framing,
    reflected_detail,
)
from openvasa.settings import OutputSettings

# Photos read 0.1-0.35, borders filled by reflection 0.9-1.0.
MIRROR_LIMIT = 0.5


@pytest.fixture(scope="module")
def close_up(astronaut) -> np.ndarray:
    """A phone-style close-up of the astronaut: the face 65 % of the picture's width."""
    detection = default_analyzer().detect(astronaut)
    side = detection.face_width_px / 0.65
    centre = detection.landmarks[:468, :2].mean(0)
    x0, y0 = (int(round(v)) for v in (centre[0] - side / 2, centre[1] - side / 2))
    crop = astronaut[max(y0, 0) : y0 + int(side), max(x0, 0) : x0 + int(side)]
    return np.ascontiguousarray(crop)


def _rest(portrait):
    motion = portrait.latent.motion0
    motion.blendshapes[:] = 0.0
    return portrait.renderer.render(motion).copy()


def test_the_measure_tells_a_reflected_border_from_a_photo(close_up, astronaut):
    assert reflected_detail(close_up) < MIRROR_LIMIT
    assert reflected_detail(astronaut) < MIRROR_LIMIT
    pad = close_up.shape[0] // 4
    mirrored = cv2.copyMakeBorder(close_up, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    assert reflected_detail(mirrored) > 0.9
    # A blurred reflection, as the old framing made, is still a reflection.
    soft = cv2.GaussianBlur(mirrored, (0, 0), 3.0)
    soft[pad:-pad, pad:-pad] = close_up
    assert reflected_detail(soft) > 0.8


def test_close_up_keeps_its_framing_and_never_mirrors(generator, close_up):
    detection = default_analyzer().detect(close_up)
    assert detection.face_width_px >= 0.6 * close_up.shape[1]
    portrait = generator.prepare_portrait(close_up)
    assert portrait.latent.framing.mode == "native"
    assert portrait.latent.framing.size == (512, 512)
    frame = _rest(portrait)
    assert reflected_detail(frame) < MIRROR_LIMIT
    # The output is the photo itself, scaled: the border far from the face is unchanged.
    photo = cv2.resize(close_up, (512, 512), interpolation=cv2.INTER_CUBIC)
    rim = np.zeros((512, 512), bool)
    rim[:, :24] = rim[:, -24:] = True
    difference = np.abs(frame[rim].astype(float) - photo[rim].astype(float)).mean()
    assert difference < 6.0


@pytest.mark.parametrize("framing,distance", [("square", 1.0), ("native", 1.6)])
def test_framing_past_the_photo_is_extended_not_mirrored(generator, close_up, framing, distance):
    portrait = generator.prepare_portrait(close_up, framing=framing, head_distance=distance)
    frame = _rest(portrait)
    assert reflected_detail(frame) < MIRROR_LIMIT
    # The extension is still over time: frames of different motion agree far from the face.
    motion = portrait.latent.motion0
    motion.pose[0] += 12.0
    motion.blendshapes[:] = 0.0
    turned = portrait.renderer.render(motion)
    corners = [(slice(0, 40), slice(0, 40)), (slice(-40, None), slice(-40, None))]
    for rows, cols in corners:
        assert np.abs(frame[rows, cols].astype(int) - turned[rows, cols].astype(int)).max() <= 2


def test_auto_keeps_head_and_shoulders_native_and_reframes_wide_shots(astronaut, close_up):
    analyzer = default_analyzer()
    wide = analyzer.detect(astronaut).landmarks
    near = analyzer.detect(close_up).landmarks
    assert choose_framing(wide, (512, 512), "auto") == "square"
    assert choose_framing(near, close_up.shape[1::-1], "auto") == "native"


def test_native_framing_keeps_the_photos_aspect(astronaut):
    tall = np.ascontiguousarray(astronaut[:, 60:460])  # 400 x 512
    landmarks = default_analyzer().detect(tall).landmarks
    plan = plan_framing(landmarks, 512, framing="native", photo_size=(400, 512))
    assert plan.size == (400, 512)
    framed = crop_image(tall, plan)
    np.testing.assert_allclose(framed.astype(float).mean(), tall.astype(float).mean(), atol=1.0)
    plan = plan_framing(landmarks, 256, framing="native", photo_size=(400, 512))
    assert plan.size == (200, 256)


def test_unknown_framing_is_one_clear_error():
    with pytest.raises(OpenvasaError, match="framing"):
        OutputSettings(framing="wide")


def test_the_framing_choice_reaches_cli_and_server():
    from openvasa.cli import build_parser
    from openvasa.settings import ServerSettings

    parser = build_parser()
    args = parser.parse_args(["generate", "face.png", "speech.wav", "--framing", "square"])
    assert args.framing == "square"
    assert parser.parse_args(["animate", "face.png", "m.csv"]).framing == "auto"
    with pytest.raises(SystemExit):
        parser.parse_args(["generate", "face.png", "speech.wav", "--framing", "wide"])
    assert ServerSettings(framing="native").framing == "native"
    with pytest.raises(OpenvasaError, match="framing"):
        ServerSettings(framing="wide")


def test_stream_settings_take_no_framing():
    """Live streams show the portrait as it was prepared: their settings have no framing."""
    from openvasa.settings import StreamSettings

    StreamSettings(frame_format="jpeg")
    assert not hasattr(StreamSettings(), "framing")
