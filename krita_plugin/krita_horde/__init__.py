"""krita-horde: a Krita docker that sends the selection to an AI Horde and brings the results
back as layers. Importing this package outside Krita registers nothing (tests import it)."""

from .version import __version__

try:
    import krita
except ImportError:  # not inside Krita
    krita = None

if krita is not None:
    from .docker import register

    register(krita)

__all__ = ["__version__"]
