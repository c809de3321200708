"""Sizes and fixed values every side of the protocol agrees on."""

from __future__ import annotations

ANONYMOUS_API_KEY = "0000000000"
DEFAULT_CLIENT_AGENT = "unknown:0:unknown"

MIN_SIDE = 64
MAX_SIDE = 3072
SIDE_MULTIPLE = 64
MAX_IMAGES_PER_REQUEST = 20
# A result may be larger than the request when a worker upscales it (post_processing): up to a
# 4x upscale of 1536x1024, the largest common SDXL size.
MAX_RESULT_PIXELS = 4 * 1536 * 4 * 1024
