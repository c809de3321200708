"""The plug-in's version: the zip name, the Client-Agent header and the docs use it."""

__version__ = "0.1.0"
CLIENT_AGENT = f"krita-horde:{__version__}:https://github.com/krita-horde"
