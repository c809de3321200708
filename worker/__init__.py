"""krita-horde's worker daemon: serves horde jobs with Hugging Face diffusers."""

__version__ = "0.1.0"
