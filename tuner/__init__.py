"""tuner: an autotuning control-loop daemon for serverless functions."""

__version__ = "0.1.0"
