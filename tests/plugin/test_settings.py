"""Job settings: validation messages, URL normalisation, persistence as text."""

from __future__ import annotations

import pytest

from krita_horde.settings import (
    JobSettings,
    MemorySettingsStore,
    SettingsError,
    load_settings,
    save_settings,
)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"prompt": ""}, "write a prompt first"),
        ({"prompt": "a ### b"}, "must not contain '###'"),
        ({"steps": 0}, "steps must be between 1 and 500, got 0"),
        ({"n": 21}, "number of images must be between 1 and 20"),
        ({"denoise": 0}, "denoising strength must be between 0.01 and 1.0"),
        ({"seed": "9" * 300}, "the seed must be at most 256 characters"),
        ({"min_size": 100}, "min size must be a multiple of 64"),
        ({"url": "aihorde.net"}, "must start with http:// or https://"),
        ({"apikey": " "}, "the API key is empty"),
        ({"mode": "outpainting"}, "mode must be one of auto, txt2img, img2img, inpainting"),
        ({"max_wait": 1}, "max wait (seconds) must be between 10"),
    ],
)
def test_bad_settings_say_what_is_wrong(values: dict, message: str) -> None:
    settings = JobSettings(prompt="a cat").with_values(**values)
    with pytest.raises(SettingsError) as error:
        settings.validate()
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://aihorde.net", "https://aihorde.net"),
        ("https://aihorde.net/", "https://aihorde.net"),
        (" http://127.0.0.1:7420/api/v2/ ", "http://127.0.0.1:7420"),
    ],
)
def test_base_url_drops_the_api_path(url: str, base: str) -> None:
    assert JobSettings(url=url).base_url == base


def test_settings_round_trip_through_text() -> None:
    store = MemorySettingsStore()
    settings = JobSettings(
        prompt="p", negative="n", steps=3, cfg=4.5, karras=False, nsfw=True, seed="x1"
    )
    save_settings(store, settings)
    assert store.values["karras"] == "false" and store.values["cfg"] == "4.5"
    assert load_settings(store) == settings
