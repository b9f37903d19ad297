"""Errors that reach the user as one clear line (the CLI prints `str(error)` and exits 1)."""


class OpenvasaError(Exception):
    """A problem with the user's input or setup; the message is a complete sentence."""


class ImageError(OpenvasaError):
    """The portrait file cannot be used: missing, empty, unreadable, wrong format or too large."""


class NoFaceError(OpenvasaError):
    """No face was found in the portrait."""


class AudioError(OpenvasaError):
    """The audio cannot be used: missing, empty, unreadable, silent-only or too long."""


class MotionFileError(OpenvasaError):
    """A motion CSV/JSON file is missing columns or is malformed."""


class PhonemeFileError(OpenvasaError):
    """A phoneme timing file (JSON or TSV) is missing, malformed or has impossible times."""
