"""`horde`: the batch command-line client of krita-horde (docs/cli.md).

Generates, explores prompts, varies images through named img2img transforms and renders
dream/animate videos on any horde that speaks the AI Horde v2 protocol (dream and animate need
our `interpolation` extension). It talks to the horde only over HTTP and shares nothing with
the server but the wire models of `horde_protocol`.
"""

from horde_protocol.version import __version__

__all__ = ["__version__"]
