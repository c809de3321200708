"""Color correction on images with known CIELAB statistics."""

from __future__ import annotations

import numpy as np
from PIL import Image

from horde_client.color import MAX_L_GAIN, boost_lightness, correct_colors, from_lab, to_lab


def lab_image(
    l_mean: float, l_std: float, a: float, b: float, ab_std: float, seed: int
) -> Image.Image:
    rng = np.random.default_rng(seed)
    lab = np.empty((96, 96, 3))
    lab[..., 0] = np.clip(l_mean + l_std * rng.standard_normal((96, 96)), 5, 95)
    lab[..., 1] = a + ab_std * rng.standard_normal((96, 96))
    lab[..., 2] = b + ab_std * rng.standard_normal((96, 96))
    return from_lab(lab)


def stats(image: Image.Image) -> np.ndarray:
    lab = to_lab(image).reshape(-1, 3)
    return np.stack([lab.mean(axis=0), lab.std(axis=0)])


def test_a_and_b_move_to_the_input_statistics() -> None:
    reference = lab_image(55, 12, a=25, b=-30, ab_std=6, seed=1)  # a cold magenta painting
    drifted = lab_image(50, 12, a=-5, b=15, ab_std=3, seed=2)  # img2img drifted to olive
    corrected = correct_colors(drifted, reference)
    want, before, after = stats(reference), stats(drifted), stats(corrected)
    for channel in (1, 2):
        assert abs(after[0, channel] - want[0, channel]) < 1.5  # means: was 30+ apart
        assert abs(after[1, channel] - want[1, channel]) < 1.0  # spreads
        assert (
            abs(after[0, channel] - want[0, channel])
            < abs(before[0, channel] - want[0, channel]) / 10
        )


def test_lightness_is_stretched_linearly_not_matched() -> None:
    """A smooth gradient keeps every one of its levels (histogram matching would merge or
    skip some: banding) and its order; a washed-out one gains contrast, bounded."""
    ramp = np.linspace(40, 60, 256)
    boosted = boost_lightness(ramp, reference=np.linspace(10, 90, 256))
    steps = np.diff(boosted)
    assert np.all(steps > 0) and np.allclose(steps, steps[0])  # linear: no bands
    assert np.ptp(boosted) == np.ptp(ramp) * MAX_L_GAIN  # capped gain
    assert abs(boosted.mean() - ramp.mean()) < 1e-9


def test_lightness_never_loses_contrast() -> None:
    ramp = np.linspace(10, 90, 256)
    assert np.allclose(boost_lightness(ramp, reference=np.linspace(45, 55, 256)), ramp)


def test_the_input_image_corrects_to_itself() -> None:
    image = lab_image(55, 12, a=25, b=-30, ab_std=6, seed=3)
    again = np.asarray(correct_colors(image, image), dtype=int)
    assert np.abs(again - np.asarray(image, dtype=int)).max() <= 2
