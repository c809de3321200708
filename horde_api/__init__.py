"""krita-horde's central horde API. `horde_api.protocol` is importable with pydantic alone."""

__version__ = "0.1.0"
