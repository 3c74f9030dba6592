"""Headless Chromium driven by Selenium, found on the machine (Debian's ``chromium`` and ``chromium-driver``).

:func:`find_browser` says where both are, or why the browser tests cannot run (the tests then
skip, with that reason in pytest's summary); :func:`start_chromium` starts one headless
window. Nothing is downloaded: Selenium is given both paths, so its driver manager stays idle.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

#: Environment variables naming the executables, where they are not on PATH under Debian's names.
BROWSER_ENV, DRIVER_ENV = "RNNSERVE_CHROMIUM", "RNNSERVE_CHROMEDRIVER"
WINDOW = (1280, 860)


@dataclass(frozen=True)
class Browser:
    chromium: str
    chromedriver: str


def find_browser() -> Browser | str:
    """Chromium and its driver, or the reason the browser tests must skip."""
    chromium = os.environ.get(BROWSER_ENV) or shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = os.environ.get(DRIVER_ENV) or shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", chromedriver)) if not path]
    if missing or chromium is None or chromedriver is None:
        return (f"{' and '.join(missing)} not found (apt-get install chromium chromium-driver, or set "
                f"{BROWSER_ENV} / {DRIVER_ENV})")
    return Browser(chromium, chromedriver)


def start_chromium(browser: Browser, width: int = WINDOW[0], height: int = WINDOW[1]) -> Chrome:
    """A headless Chromium window of ``width`` x ``height`` CSS pixels, keeping the console log."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser.chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={width},{height}", "--force-device-scale-factor=1", "--lang=en-US"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=browser.chromedriver))
