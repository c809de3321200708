"""krita-horde's worker daemon: serves horde jobs with Hugging Face diffusers."""

from horde_protocol.version import __version__

__all__ = ["__version__"]
