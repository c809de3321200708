"""The GIMP plug-in in Debian's real GIMP 2.10, in batch mode, against the real horde and the
tiny worker: results land as layers at the selection, pixels outside the selection stay as they
were, and the horde's refusals reach the artist as GIMP messages with the client's text."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.cli.recording_proxy import RecordingProxy
from tests.gimp.conftest import Gimp, GimpRun, Layer
from tests.helpers.live_horde import free_port

pytestmark = [pytest.mark.gimp, pytest.mark.e2e, pytest.mark.slow]

WIDTH, HEIGHT = 128, 96
PROMPT = "a red square"


def source_picture(path: Path) -> np.ndarray:
    """A picture with structure everywhere, so any repainted pixel shows."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    pixels = np.stack([x * 2, y * 2, (x + y) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(pixels, "RGB").save(path)
    return pixels


def load(path: Path) -> str:
    return f'(define img (car (file-png-load RUN-NONINTERACTIVE "{path}" "{path}")))'


def paint(
    url: str, *, n: int = 1, seed: int = 1234, model: str = "krita-horde-tiny", key: str = ""
) -> str:
    """The plug-in, non-interactive: prompt, negative, mode 0 (auto), strength, seed, steps,
    cfg, model, n, url, key (empty: the environment's), min and max size."""
    return (
        "(plug-in-ai-horde RUN-NONINTERACTIVE img (car (gimp-image-get-active-layer img))"
        f' "{PROMPT}" "" 0 0.5 {seed} 2 7.5 "{model}" {n} "{url}" "{key}" 64 128)'
    )


def export(path: Path) -> str:
    return (
        "(begin (gimp-selection-none img) (file-png-save-defaults RUN-NONINTERACTIVE img"
        f' (car (gimp-image-merge-visible-layers img CLIP-TO-IMAGE)) "{path}" "{path}"))'
    )


def exported(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def decoded(b64: str, mode: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert(mode))


def new_layers(run: GimpRun) -> list[Layer]:
    return [layer for layer in run.layers() if layer.name.startswith(PROMPT)]


def test_img2img_on_a_rectangle_adds_layers_there_and_nothing_else(
    gimp: Gimp, proxy: RecordingProxy
) -> None:
    source = source_picture(gimp.home / "source.png")
    out = gimp.home / "out.png"
    run = gimp.batch(
        load(gimp.home / "source.png"),
        "(gimp-image-select-rectangle img CHANNEL-OP-REPLACE 24 16 64 64)",
        paint(proxy.url, n=2),
        "(report-layers img)",
        export(out),
    )
    assert len(proxy.submitted()) == 1, run.stderr
    body = proxy.submitted()[0].body
    assert body["source_processing"] == "img2img" and "source_mask" not in body, run.stderr
    assert (body["params"]["width"], body["params"]["height"], body["params"]["n"]) == (64, 64, 2)
    assert body["params"]["denoising_strength"] == 0.5
    # The source is exactly the selected rectangle of what the artist sees.
    assert np.array_equal(decoded(body["source_image"], "RGB"), source[16:80, 24:88])

    layers = new_layers(run)
    assert len(layers) == 2, run.stderr
    assert {(layer.x, layer.y, layer.width, layer.height) for layer in layers} == {(24, 16, 64, 64)}
    seeds = {re.fullmatch(rf"{PROMPT} \[seed (\d+)\]", layer.name).group(1) for layer in layers}  # type: ignore[union-attr]
    assert "1234" in seeds and len(seeds) == 2

    result = exported(out)
    outside = np.ones((HEIGHT, WIDTH), bool)
    outside[16:80, 24:88] = False
    assert np.array_equal(result[outside], source[outside])
    assert not np.array_equal(result[16:80, 24:88], source[16:80, 24:88])


def test_inpainting_an_ellipse_repaints_only_inside_its_shape(
    gimp: Gimp, proxy: RecordingProxy
) -> None:
    source = source_picture(gimp.home / "source.png")
    out = gimp.home / "out.png"
    run = gimp.batch(
        load(gimp.home / "source.png"),
        "(gimp-image-select-ellipse img CHANNEL-OP-REPLACE 32 16 64 64)",
        paint(proxy.url),
        "(report-layers img)",
        export(out),
    )
    assert len(proxy.submitted()) == 1, run.stderr
    body = proxy.submitted()[0].body
    # "auto" with a shaped selection is inpainting, the selection's shape the mask.
    assert body["source_processing"] == "inpainting", run.stderr
    mask = decoded(body["source_mask"], "L")
    assert mask.shape == (64, 64) and mask[32, 32] == 255 and mask[0, 0] == 0 == mask[63, 63]

    (layer,) = new_layers(run)
    assert (layer.x, layer.y, layer.width, layer.height) == (32, 16, 64, 64)

    # Distance from the ellipse's centre in radii, per canvas pixel centre.
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    radius = np.hypot((x + 0.5 - 64) / 32, (y + 0.5 - 48) / 32)
    result = exported(out)
    outside = radius > 1.03  # the antialiased rim is left out
    assert np.array_equal(result[outside], source[outside])
    # The bounding box's corners are outside the shape: untouched although inside the layer.
    assert np.array_equal(result[16:20, 32:36], source[16:20, 32:36])
    inside = radius < 0.9
    changed = np.any(result[inside] != source[inside], axis=-1)
    assert changed.mean() > 0.9


def test_refusals_reach_the_artist_as_gimp_messages(gimp: Gimp, proxy: RecordingProxy) -> None:
    source_picture(gimp.home / "source.png")
    closed = f"http://127.0.0.1:{free_port()}"
    run = gimp.batch(
        load(gimp.home / "source.png"),
        "(gimp-image-select-rectangle img CHANNEL-OP-REPLACE 24 16 64 64)",
        # Each failure ends its call only (catch): the next one still runs.
        f"(catch #f {paint(proxy.url, key='0123456789abcdef')})",  # a key the horde does not know
        f"(catch #f {paint(proxy.url, model='no-such-model')})",
        f"(catch #f {paint(closed)})",
        "(report-layers img)",
    )
    messages = [line for line in run.stderr.splitlines() if line.startswith("AI Horde-Warning:")]
    assert len(messages) == 3, run.stderr
    bad_key, no_worker, no_horde = messages
    assert "the horde refused POST /generate/async: 401" in bad_key, run.stderr
    assert "no live worker of" in no_worker and "serves model no-such-model" in no_worker
    assert f"ConnectError reaching {closed}" in no_horde, run.stderr
    # The unknown model's request was withdrawn, not left queued on the horde.
    assert len(proxy.submitted()) == 1
    assert proxy.sent("DELETE", "/generate/status/")
    assert new_layers(run) == [] and len(run.layers()) == 1


def test_a_thin_selection_is_sent_with_its_surroundings_not_stretched(
    gimp: Gimp, proxy: RecordingProxy
) -> None:
    """16×96 at (8, 0) would be 64×128 stretched four ways across and 4/3 down; the horde gets
    the 48×96 around it (the generation's 1:2 aspect, moved inside the canvas) scaled by 4/3
    both ways, and the result is cut back to the selection."""
    source = source_picture(gimp.home / "source.png")
    out = gimp.home / "out.png"
    run = gimp.batch(
        load(gimp.home / "source.png"),
        "(gimp-image-select-rectangle img CHANNEL-OP-REPLACE 8 0 16 96)",
        paint(proxy.url),
        "(report-layers img)",
        export(out),
    )
    (request,) = proxy.submitted()
    body = request.body
    assert (body["params"]["width"], body["params"]["height"]) == (64, 128), run.stderr
    context = Image.fromarray(source[0:96, 0:48]).resize((64, 128), Image.Resampling.LANCZOS)
    assert np.array_equal(decoded(body["source_image"], "RGB"), np.asarray(context))
    (layer,) = new_layers(run)
    assert (layer.x, layer.y, layer.width, layer.height) == (8, 0, 16, 96)
    result = exported(out)
    outside = np.ones((HEIGHT, WIDTH), bool)
    outside[0:96, 8:24] = False
    assert np.array_equal(result[outside], source[outside])
