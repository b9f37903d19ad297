"""The openvasa version, in a module of its own so that any stage can name it without
importing the package's top level (which would reach back into the pipeline)."""

__version__ = "0.1.0"
