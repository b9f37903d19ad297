"""openvasa: lifelike talking-face video from one portrait and one audio clip."""

from openvasa.errors import OpenvasaError
from openvasa.settings import Controls, OutputSettings
from openvasa.version import __version__


def __getattr__(name: str):
    # The Generator pulls in MediaPipe and Numba; import it only when asked for.
    if name == "Generator":
        from openvasa.pipeline import Generator

        return Generator
    raise AttributeError(name)


__all__ = ["Controls", "Generator", "OpenvasaError", "OutputSettings", "__version__"]
