"""Color correction after img2img: pull the colors back toward the input image's.

Repeated img2img drifts in hue and saturation. In CIELAB the color lives in a* and b* and the
lightness in L*, so the two are treated apart:

- a* and b* are histogram-matched to the input's: the result's colors take the input's
  distribution, which undoes the drift.
- L* is NOT histogram-matched, only stretched linearly (a contrast boost that never lowers
  contrast). Matching maps the 8-bit lightness levels of the result onto the input's levels with
  a staircase-shaped curve; in smooth gradients (skies, skin) neighbouring levels then jump
  several steps at once or merge, and the eye sees bands. A linear map has no such steps, and
  lightness is where the eye sees steps first.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from skimage.color import lab2rgb, rgb2lab
from skimage.exposure import match_histograms

# The linear L* stretch is bounded: a washed-out result gets at most this much more contrast.
MAX_L_GAIN = 1.5
_PERCENTILES = (1, 99)


def to_lab(image: Image.Image) -> np.ndarray:
    return rgb2lab(np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0)


def from_lab(lab: np.ndarray) -> Image.Image:
    rgb = np.clip(lab2rgb(lab), 0.0, 1.0)
    return Image.fromarray(np.round(rgb * 255.0).astype(np.uint8), "RGB")


def boost_lightness(lightness: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Stretch L* about its mean so its 1–99 % range approaches the reference's; never less
    contrast, at most MAX_L_GAIN times more."""
    low, high = np.percentile(lightness, _PERCENTILES)
    ref_low, ref_high = np.percentile(reference, _PERCENTILES)
    spread = high - low
    gain = 1.0 if spread <= 1e-6 else float(np.clip((ref_high - ref_low) / spread, 1.0, MAX_L_GAIN))
    mean = float(lightness.mean())
    return np.clip(mean + (lightness - mean) * gain, 0.0, 100.0)


def correct_colors(image: Image.Image, reference: Image.Image) -> Image.Image:
    """`image` with its a*/b* histograms matched to `reference`'s and its L* boosted."""
    lab = to_lab(image)
    ref = to_lab(reference)
    corrected = np.empty_like(lab)
    corrected[..., 0] = boost_lightness(lab[..., 0], ref[..., 0])
    corrected[..., 1:] = match_histograms(lab[..., 1:], ref[..., 1:], channel_axis=-1)
    return from_lab(corrected)
