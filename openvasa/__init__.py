"""openvasa: lifelike talking-face video from one portrait and one audio clip."""

__version__ = "0.1.0"

from openvasa.errors import OpenvasaError  # noqa: E402
from openvasa.settings import Controls, OutputSettings  # noqa: E402


def __getattr__(name: str):
    # The Generator pulls in MediaPipe and Numba; import it only when asked for.
    if name == "Generator":
        from openvasa.pipeline import Generator

        return Generator
    raise AttributeError(name)


__all__ = ["Controls", "Generator", "OpenvasaError", "OutputSettings", "__version__"]
