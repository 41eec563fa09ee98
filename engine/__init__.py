"""driftline: streaming drift and model-quality monitoring."""

__version__ = "0.1.0"
