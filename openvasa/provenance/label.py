"""Labels in the file itself: container metadata saying that a video is AI-generated."""

from __future__ import annotations

from openvasa.provenance.payload import key_id
from openvasa.version import __version__

AI_GENERATED_NOTE = "AI-generated video"


def provenance_metadata(watermarked: bool, key: str | None = None) -> dict[str, str]:
    """MP4 tags for a video openvasa made: `comment` and `description` (MP4's own fields,
    shown by players and `ffprobe`), plus `ai_generated`, `generator` and `watermark`.

    libavformat writes its own `encoder` tag, so the label lives in these fields instead.
    """
    if watermarked:
        mark = (
            f"openvasa invisible watermark, key id {key_id(key):06x}"
            if key
            else ("openvasa invisible watermark, no key")
        )
        check = "; check it with `openvasa verify FILE`"
    else:
        mark, check = "none (switched off)", ""
    return {
        "comment": f"{AI_GENERATED_NOTE}: made by openvasa {__version__} from one portrait "
        f"and one audio clip{check}",
        "description": f"{AI_GENERATED_NOTE} (synthetic talking face, openvasa {__version__})",
        "ai_generated": "true",
        "generator": f"openvasa {__version__}",
        "watermark": mark,
    }


def is_labelled(tags: dict[str, str]) -> bool:
    """Whether container tags say the file is AI-generated (as `provenance_metadata` does)."""
    lowered = {k.lower(): str(v) for k, v in tags.items()}
    if lowered.get("ai_generated", "").lower() == "true":
        return True
    return any(AI_GENERATED_NOTE.lower() in lowered.get(k, "").lower() for k in lowered)
