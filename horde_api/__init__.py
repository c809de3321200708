"""krita-horde's central horde API (the wire protocol is the package `horde_protocol`)."""

from horde_protocol.version import __version__

__all__ = ["__version__"]
