"""The web studio in a real browser: Debian's Chromium, headless, against the real horde and the
tiny worker, in both storage modes. One browser and one horde + worker per mode serve the whole
scenario: sign in, generate (seeing progress and the worker's preview), cancel from the queue,
find the result in the library, open it in the advanced page, vary it and inpaint it, delete,
dark mode, a phone-width layout, and a second user who cannot see the first one's library.

The embedded run writes the screenshots of docs/web.md (docs/images/web/), so they always show
the current code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from tests.conftest import ROOT, require
from tests.fixtures.public_horde import routing_reasons
from tests.helpers.live_horde import LiveHorde, start_horde
from tests.helpers.live_worker import LiveWorker, start_worker
from tests.studio.browser import DESKTOP, PHONE, Page, chromium_available, start_chromium
from tests.studio.conftest import shared_stores

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCREENSHOTS = ROOT / "docs" / "images" / "web"
MODEL = "krita-horde-tiny"
XSS_PROMPT = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"> a fox'
PROMPT = "a lighthouse at dusk, oil painting"


@dataclass
class LiveStudio:
    horde: LiveHorde
    worker: LiveWorker
    keys: dict[str, str]
    mode: str

    @property
    def screenshots(self) -> Path | None:
        return SCREENSHOTS if self.mode == "embedded" else None


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    require(
        chromium_available(),
        "Debian's Chromium and its driver are not installed (apt-get install chromium"
        " chromium-driver)",
    )
    driver = start_chromium(tmp_path_factory.mktemp("downloads"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(
    scope="module",
    params=[
        "embedded",
        pytest.param("redis-postgres", marks=[pytest.mark.redis, pytest.mark.postgres]),
    ],
)
def live_studio(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStudio]:
    with ExitStack() as stack:
        stores = shared_stores(stack, "studio") if request.param == "redis-postgres" else {}
        folder = tmp_path_factory.mktemp(f"studio-{request.param}")
        env = {"HORDE_LIBRARY_SWEEP_SECONDS": "0.5", "HORDE_JANITOR_INTERVAL_SECONDS": "0.2"}
        horde = stack.enter_context(start_horde(folder, extra_env=env, **stores))
        # Alice's long request (400 steps) needs kudos up front, as on the public horde.
        keys = {name: horde.create_user(name) for name in ("bob", "volunteer")}
        keys["alice"] = horde.create_user("alice", kudos=10_000)
        worker = stack.enter_context(
            start_worker(folder, horde.url, keys["volunteer"], name=f"studio-{request.param}")
        )
        worker.wait_ready()
        yield LiveStudio(horde, worker, keys, request.param)


def no_script_errors(page: Page) -> None:
    """Nothing threw and the Content-Security-Policy refused nothing."""
    problems = [
        message
        for message in page.errors()
        if "Uncaught" in message or "Content Security Policy" in message or "Refused" in message
    ]
    assert not problems, problems


def sign_in(page: Page, key: str, name: str) -> None:
    page.click("#sign-in-open")
    page.wait(lambda: page.find("#sign-in-dialog").get_attribute("open") is not None, "dialog")
    page.fill("#sign-in-key", key)
    page.find("#sign-in-key").send_keys(Keys.ENTER)  # submitted from the keyboard
    page.wait(lambda: page.text("#user-name").startswith(f"Signed in as {name}#"), f"{name} in")
    assert key not in page.driver.current_url


def wait_model(page: Page) -> None:
    page.wait(
        lambda: page.js("return document.getElementById('model').value") == MODEL,
        "the model list with the tiny worker's model",
    )
    assert "1 worker" in page.text("#model option:checked")


def submit(page: Page) -> str:
    """Submit the form from the keyboard; returns the new request's id."""
    before = len(page.all("#jobs article.job"))
    page.find("#generate").send_keys(Keys.ENTER)
    page.wait(lambda: len(page.all("#jobs article.job")) == before + 1, "a card for the request")
    return str(page.find("#jobs article.job").get_attribute("data-request-id"))


def card(page: Page, request_id: str) -> str:
    return f'article.job[data-request-id="{request_id}"]'


def wait_done(page: Page, request_id: str, images: int) -> None:
    css = card(page, request_id)
    page.wait(
        lambda: (
            page.find(css).get_attribute("data-state") == "done"
            and len(page.all(f"{css} .tile-image")) == images
            and all(page.image_loaded(img) for img in page.all(f"{css} .tile-image"))
        ),
        f"{images} images of {request_id}",
        timeout=120,
    )


RECORD_ASYNC_BODIES = """
window.__asyncBodies = [];
const original = window.fetch;
window.fetch = (url, init) => {
  if (String(url).endsWith("/generate/async") && init && init.body) {
    window.__asyncBodies.push(init.body);
  }
  return original(url, init);
};
"""


def create_page(page: Page, studio: LiveStudio) -> tuple[str, str]:
    """Generate on the prompt page: a long request (progress, preview) and a quick one."""
    page.open("/")
    # The first Tab reaches the skip link: the page is usable from the keyboard.
    page.find("body").send_keys(Keys.TAB)
    assert page.js("return document.activeElement.className") == "skip-link"
    sign_in(page, studio.keys["alice"], "alice")
    wait_model(page)
    page.click("#surprise")
    surprise = page.js("return document.getElementById('prompt').value")
    assert len(surprise) > 20
    page.click("#surprise")
    assert page.js("return document.getElementById('prompt').value") != surprise

    page.fill("#prompt", XSS_PROMPT)
    page.click("details summary")
    page.select("#size", "128x128")
    page.fill("#steps", "400")
    # The price of what the form would queue (dry_run) and the balance in the header.
    page.wait(lambda: re.fullmatch(r"Costs \d+\.\d\d kudos", page.text("#cost")), "the quote")
    assert page.text("#user-name").endswith("10000.00 kudos")
    long_request = submit(page)
    css = card(page, long_request)
    page.wait(
        lambda: (
            page.find(css).get_attribute("data-state") == "running"
            and int(page.find(f"{css} progress").get_attribute("value")) > 0
            and page.image_loaded(page.find(f"{css} .job-preview"))
        ),
        "progress and the worker's preview",
    )
    assert page.text(f"{css} .job-status").startswith("Generating:")
    # The prompt shows as text; neither its script nor its image handler ran.
    assert page.text(f"{css} .job-prompt") == XSS_PROMPT
    assert page.js("return window.__xss") is None
    page.screenshot(studio.screenshots, "create-progress.png", scroll_to="#jobs-title")

    page.open("/queue")
    queued = card(page, long_request)
    page.wait(lambda: page.text(f"{queued} .job-status").startswith("Generating"), "queue row")
    page.wait(
        lambda: (
            page.text("#models-table tbody th") == MODEL
            and page.text("#models-table tbody td") == "1"
        ),
        "the horde's queue per model",
    )
    page.screenshot(studio.screenshots, "queue.png")
    page.click(f"{queued} footer button")
    page.wait(lambda: page.text(f"{queued} .job-status") == "Cancelled", "cancelled")

    page.open("/")
    wait_model(page)
    page.fill("#prompt", PROMPT)
    page.fill("#negative", "blurry")
    page.fill("#n", "2")
    page.fill("#seed", "4242")
    page.click("details summary")
    page.select("#size", "128x128")
    page.fill("#steps", "6")
    page.screenshot(studio.screenshots, "create.png")
    # Record the bodies the page sends to /generate/async (the quote's dry runs and the request).
    page.js(RECORD_ASYNC_BODIES)
    quick = submit(page)
    wait_done(page, quick, 2)
    sent = [json.loads(body) for body in page.js("return window.__asyncBodies")]
    queued = [body for body in sent if not body.get("dry_run")]
    assert len(queued) == 1, sent
    # What the studio queues reaches every plain worker of the public horde too.
    for body in sent:
        assert routing_reasons(body) == [], body
    assert queued[0]["params"]["seed_variation"] == 1 and queued[0]["params"]["n"] == 2
    done_text = page.text(f"{card(page, quick)} .job-status")
    assert "kept in your library" in done_text
    assert re.search(r" · \d+\.\d\d kudos — ", done_text), done_text
    # Hover enlarges an image.
    image = page.find(f"{card(page, quick)} .tile-image")
    ActionChains(page.driver).move_to_element(image).perform()
    page.wait(lambda: page.js("return getComputedStyle(arguments[0]).transform", image) != "none",
              "the hovered image grows")  # fmt: skip
    no_script_errors(page)
    return long_request, quick


def library_and_advanced(page: Page, studio: LiveStudio, long_request: str, quick: str) -> None:
    page.open("/library")
    kept = f'article.kept[data-request-id="{quick}"]'
    page.wait(
        lambda: (
            len(page.all(f"{kept} .tile-image")) == 2
            and all(page.image_loaded(i) for i in page.all(f"{kept} .tile-image"))
        ),
        "the quick request's two images in the library",
    )
    assert page.text(f'article.kept[data-request-id="{long_request}"] .kept-title') == XSS_PROMPT
    assert page.js("return window.__xss") is None
    page.click(f"{kept} details summary")
    settings = page.text(f"{kept} dl.settings")
    for expected in (PROMPT, "blurry", MODEL, "4242", "Steps\n6", "128 × 128", "k_euler_a"):
        assert expected in settings, (expected, settings)
    assert "generated in" in settings
    page.screenshot(studio.screenshots, "library.png")

    # A click on an image opens the advanced page with that image and its settings.
    first_seed = page.find(f"{kept} figure.tile").text.split()[1]
    page.click(f"{kept} a.tile-open")
    page.wait(lambda: "/advanced?" in page.driver.current_url, "the advanced page")
    page.wait(lambda: page.text("#notice").startswith("Starting from"), "prefilled from library")
    assert studio.keys["alice"] not in page.driver.current_url
    values = page.js(
        "return ['prompt', 'negative', 'seed', 'steps', 'width', 'model', 'sampler']"
        ".map((id) => document.getElementById(id).value)"
    )
    assert values == [PROMPT, "blurry", first_seed, "6", "128", MODEL, "k_euler_a"]
    assert page.find("#source-canvas").get_attribute("data-loaded") == "1"
    assert page.js("return document.querySelector('input[value=library]').checked")

    # Vary it (img2img at a chosen strength), with the seed locked.
    page.js(
        "const d = document.getElementById('denoise'); d.value = '0.5';"
        " d.dispatchEvent(new Event('input'));"
    )
    page.click("#seed-lock")
    page.screenshot(studio.screenshots, "advanced.png", scroll_to="#source-editor")
    variation = submit(page)
    wait_done(page, variation, 1)
    assert page.js("return document.getElementById('seed').value") == first_seed

    # Inpaint it: paint a mask over the source in the page.
    page.select("#processing", "inpainting")
    page.wait(lambda: page.find("#mask-tools").is_displayed(), "the mask tools")
    canvas = page.find("#mask-canvas")
    page.js("arguments[0].scrollIntoView({block: 'center'})", canvas)
    (
        ActionChains(page.driver)
        .move_to_element_with_offset(canvas, -60, 0)
        .click_and_hold()
        .move_by_offset(120, 0)
        .move_by_offset(0, 40)
        .release()
        .perform()
    )
    painted = page.js(
        "const c = document.getElementById('mask-canvas');"
        " return c.getContext('2d').getImageData(c.width / 2, c.height / 2, 1, 1).data[3]"
    )
    assert painted > 0
    page.screenshot(studio.screenshots, "inpainting.png", scroll_to="#mask-tools")
    inpainted = submit(page)
    wait_done(page, inpainted, 1)
    no_script_errors(page)

    # Both are in the library with their source noted.
    page.open("/library")
    for request_id, processing in ((variation, "img2img"), (inpainted, "inpainting")):
        row = f'article.kept[data-request-id="{request_id}"]'
        page.wait(lambda row=row: page.image_loaded(page.find(f"{row} .tile-image")), request_id)
        page.click(f"{row} details summary")
        assert f"{processing} from library" in page.text(f"{row} dl.settings")

    # Delete one image, after confirming.
    image_id = page.find(f"{kept} figure.tile").get_attribute("data-image-id")
    page.click(f'{kept} figure[data-image-id="{image_id}"] button')
    page.wait(lambda: page.find("#confirm-dialog").get_attribute("open") is not None, "confirm")
    page.click("#confirm-delete")
    page.wait(lambda: len(page.all(f"{kept} figure.tile")) == 1, "one image left")
    gone = httpx.get(
        f"{studio.horde.api}/library/images/{image_id}.webp",
        headers={"apikey": studio.keys["alice"]},
    )
    assert gone.status_code == 404
    no_script_errors(page)


def dark_mode_and_phone(page: Page, studio: LiveStudio) -> None:
    page.open("/library")
    assert page.js("return document.documentElement.dataset.theme") == "light"
    page.click("#theme-toggle")
    assert page.js("return document.documentElement.dataset.theme") == "dark"
    assert page.find("#theme-toggle").get_attribute("aria-pressed") == "true"
    page.open("/library")  # remembered across pages and reloads
    assert page.js("return document.documentElement.dataset.theme") == "dark"
    page.wait(lambda: page.all("article.kept .tile-image"), "library cards")
    page.screenshot(studio.screenshots, "library-dark.png")
    page.click("#theme-toggle")
    assert page.js("return document.documentElement.dataset.theme") == "light"

    page.driver.set_window_size(*PHONE)
    try:
        for path in ("/", "/library", "/advanced"):
            page.open(path)
            width = page.js("return [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], (path, width)
            if path == "/":
                page.screenshot(studio.screenshots, "create-phone.png")
    finally:
        page.driver.set_window_size(*DESKTOP)


def second_user(page: Page, studio: LiveStudio, quick: str) -> None:
    page.open("/library")
    sign_in(page, studio.keys["bob"], "bob")
    page.wait(lambda: page.find("#library-empty").is_displayed(), "bob's empty library")
    assert not page.all("article.kept")
    # Not even with alice's ids: the library answers bob for bob's library only.
    status = page.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        " fetch(`/api/v2/library/requests/${arguments[0]}`,"
        "   {headers: {apikey: arguments[1]}}).then((r) => done(r.status));",
        quick,
        studio.keys["bob"],
    )
    assert status == 404
    page.open("/queue")
    page.wait(lambda: page.find("#queue-empty").is_displayed(), "bob's empty queue")
    # Anonymous: a library of this browser's own, empty too.
    page.click("#sign-in-open")
    page.wait(lambda: page.find("#sign-in-dialog").get_attribute("open") is not None, "dialog")
    page.click("#sign-in-anonymous")
    page.wait(lambda: page.text("#user-name") == "Anonymous", "anonymous")
    page.open("/library")
    page.wait(lambda: page.find("#library-empty").is_displayed(), "the anonymous empty library")
    no_script_errors(page)


def test_the_studio_in_a_real_browser(chromium: WebDriver, live_studio: LiveStudio) -> None:
    page = Page(chromium, live_studio.horde.url)
    long_request, quick = create_page(page, live_studio)
    library_and_advanced(page, live_studio, long_request, quick)
    dark_mode_and_phone(page, live_studio)
    second_user(page, live_studio, quick)
    # The keys never reached the server's log (they travel in headers only).
    log = live_studio.horde.log_text()
    assert all(key not in log for key in live_studio.keys.values())
