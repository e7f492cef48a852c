"""debuglab: a training kit for debugging OpenStack nova code."""

__version__ = "0.1.0"
