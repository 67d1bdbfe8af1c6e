"""Wyoming speech-to-text server that streams speech to Smallest.ai Lightning / Pulse."""

__version__ = "0.2.0"
