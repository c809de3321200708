"""Debian's Chromium, headless, driven by Selenium through Debian's chromedriver, and the few
helpers the studio's browser test needs (waiting on conditions, never on sleeps)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DESKTOP = (1280, 800)
PHONE = (390, 844)
T = TypeVar("T")


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def start_chromium(download_dir: Path) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # we run as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-extensions",
        "--disable-sync",
        "--no-first-run",
        "--mute-audio",
        "--hide-scrollbars",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
        "--force-device-scale-factor=1",
        "--lang=en-GB",
    ):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(download_dir), "intl.accept_languages": "en-GB"}
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The Service path keeps Selenium Manager from looking for (downloading) a driver.
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class Page:
    """One browser tab on the studio, with waits that fail with what was expected."""

    def __init__(self, driver: WebDriver, base_url: str, timeout: float = 60) -> None:
        self.driver = driver
        self.base_url = base_url
        self.timeout = timeout

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)
        self.wait(lambda: self.js("return document.readyState") == "complete", f"{path} loads")
        # The page module has run once the user name is filled in.
        self.wait(lambda: self.text("#user-name") not in ("", "…"), f"{path} shows the user")

    def wait(self, condition: Callable[[], T], what: str, timeout: float | None = None) -> T:
        def attempt(_: Any) -> T:
            try:
                return condition()
            except Exception:  # elements re-rendered under us: look again
                return None  # type: ignore[return-value]

        return WebDriverWait(self.driver, timeout or self.timeout, poll_frequency=0.1).until(
            attempt, message=f"waited for: {what}"
        )

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        return self.find(css).text

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def fill(self, css: str, value: str) -> None:
        element = self.find(css)
        element.clear()
        element.send_keys(value)

    def click(self, css: str) -> None:
        element = self.find(css)
        self.js("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def select(self, css: str, value: str) -> None:
        self.js(
            "const s = document.querySelector(arguments[0]); s.value = arguments[1];"
            " s.dispatchEvent(new Event('change'));",
            css,
            value,
        )

    def screenshot(self, folder: Path | None, name: str, scroll_to: str | None = None) -> None:
        """A docs screenshot (only when `folder` is given), with `scroll_to` at the top."""
        if folder is None:
            return
        if scroll_to:
            self.js("document.querySelector(arguments[0]).scrollIntoView()", scroll_to)
        else:
            self.js("window.scrollTo(0, 0)")
        # Let the last layout settle: one animation frame.
        self.driver.execute_async_script("requestAnimationFrame(() => arguments[0]())")
        folder.mkdir(parents=True, exist_ok=True)
        assert self.driver.save_screenshot(str(folder / name)), name

    def image_loaded(self, element: WebElement) -> bool:
        script = "return arguments[0].complete && arguments[0].naturalWidth > 0"
        return bool(self.js(script, element))

    def errors(self) -> list[str]:
        """Errors the page logged (scripts that threw, resources that failed, CSP refusals)."""
        return [
            entry["message"]
            for entry in self.driver.get_log("browser")
            if entry.get("level") == "SEVERE"
        ]
