"""Audio in: loading any audio file as 16 kHz mono, prosody per video frame, and speech
synthesis with phoneme timing (eSpeak NG)."""

from openvasa.audio.load import SAMPLE_RATE, Audio, load_audio, save_wav
from openvasa.audio.prosody import Prosody, prosody_features
from openvasa.audio.speech import PhonemeEvent, SpeechClip, demo_speech, synthesize_speech

__all__ = [
    "SAMPLE_RATE",
    "Audio",
    "PhonemeEvent",
    "Prosody",
    "SpeechClip",
    "demo_speech",
    "load_audio",
    "prosody_features",
    "save_wav",
    "synthesize_speech",
]
