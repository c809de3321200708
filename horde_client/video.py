"""Frames to a video file: MP4 (H.264) through PyAV, or animated WebP through Pillow.

PyAV's wheels carry FFmpeg with its H.264 encoder, so MP4 needs nothing installed besides
`pip install`; animated WebP needs only Pillow and plays in every browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from horde_client.errors import UsageError
from horde_client.images import as_rgb

VIDEO_FORMATS = ("mp4", "webp")


def write_video(frames: Sequence[Path], path: Path, fps: int) -> Path:
    """Write `frames` (image files, in order) as a video at `path` (.mp4 or .webp)."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in VIDEO_FORMATS:
        raise UsageError(f"{path}: a video is .mp4 or .webp, got {path.suffix or 'no suffix'}")
    images = [as_rgb(Image.open(frame)) for frame in frames]
    if suffix == "webp":
        images[0].save(
            path,
            format="WEBP",
            save_all=True,
            append_images=images[1:],
            duration=round(1000 / fps),
            loop=0,
            quality=90,
        )
        return path
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = images[0].size
        stream.pix_fmt = "yuv420p"
        # Near-lossless: the frames are few and small, their detail is the point.
        stream.options = {"crf": "18"}
        for image in images:
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
