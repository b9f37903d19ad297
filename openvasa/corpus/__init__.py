"""The synthetic talking corpus: eSpeak NG speech in many languages, the teacher's motion,
augmented audio and Whisper features, in shards with a manifest (`openvasa corpus build`)."""

from openvasa.corpus.builder import BuildReport, CorpusError, CorpusSpec, build_corpus
from openvasa.corpus.reader import CorpusClip, iter_corpus_clips, read_manifest

__all__ = [
    "BuildReport",
    "CorpusClip",
    "CorpusError",
    "CorpusSpec",
    "build_corpus",
    "iter_corpus_clips",
    "read_manifest",
]
