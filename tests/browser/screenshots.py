"""Screenshots of the playground's four views with the shipped models: ``docs/playground-<view>.png``.

Run ``.venv/bin/python -m tests.browser.screenshots`` (needs chromium and chromedriver, as the
browser tests do). It starts a real server with the default models, types and clicks in headless
Chromium as a user would, and saves what the window shows; nothing on the pages is staged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from rnnserve.ops.config import ServerConfig
from rnnserve.testing.server import ServerThread, running_server
from tests.browser.driver import find_browser, start_chromium
from tests.browser.pages import by_id, choose_model, open_view, wait

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

DOCS = Path(__file__).resolve().parents[2] / "docs"
#: Shipped models shown in each view, and what is typed there.
ASSISTANT, LANGUAGE_MODEL, TRANSLATOR = "austen-writing-assistant", "austen-char-lstm", "en-de-gru"
TYPED = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, "
         "must be in want of a w")
PROMPT = "Elizabeth could not help"
SOURCE = "The house is small, but the garden is very beautiful."
KEYSTROKES = 12  # typed one at a time, each waiting for its suggestions (the latency shown)
PATIENCE = 60  # the shipped models on a busy CPU


def _fill(driver: Chrome, element_id: str, value: str) -> None:
    field = by_id(driver, element_id)
    field.clear()
    field.send_keys(value)


def write(driver: Chrome, server: ServerThread) -> None:
    open_view(driver, server, "write")
    choose_model(driver, "write-model", ASSISTANT)
    driver.find_element(By.CSS_SELECTOR, "input[value=SUGGESTION_KIND_NEXT_WORDS]").click()
    text = by_id(driver, "write-text")
    for end in range(len(TYPED) - KEYSTROKES, len(TYPED) + 1):  # a paste, then a typist's last keystrokes
        text.send_keys(TYPED[len(text.get_attribute("value") or ""):end])
        wait(driver, lambda d, end=end: f" {end} chars" in by_id(d, "write-status").text
             and d.find_elements(By.CSS_SELECTOR, "#write-suggestions:not(.stale) li"), "suggestions", PATIENCE)


def generate(driver: Chrome, server: ServerThread) -> None:
    open_view(driver, server, "generate")
    choose_model(driver, "generate-model", LANGUAGE_MODEL)
    _fill(driver, "generate-prompt", PROMPT)
    for field, value in (("max", "280"), ("temperature", "0.6"), ("seed", "1813"), ("n", "2")):
        _fill(driver, f"generate-{field}", value)
    by_id(driver, "generate-run").click()
    wait(driver, lambda d: by_id(d, "generate-run").text == "Generate"
         and len(d.find_elements(By.CSS_SELECTOR, ".sample")) == 2, "both samples to finish", PATIENCE)


def translate(driver: Chrome, server: ServerThread) -> None:
    open_view(driver, server, "translate")
    choose_model(driver, "translate-model", TRANSLATOR)
    _fill(driver, "translate-text", SOURCE)
    by_id(driver, "translate-text").send_keys(Keys.CONTROL, Keys.ENTER)
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#translate-attention svg"), "the attention", PATIENCE)


def models(driver: Chrome, server: ServerThread) -> None:
    open_view(driver, server, "models")
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".model"), "the model list", PATIENCE)
    by_id(driver, "models-auto").click()  # hold the page still, then unfold the first card
    driver.find_element(By.CSS_SELECTOR, "details.card summary").click()


VIEWS = {"write": write, "generate": generate, "translate": translate, "models": models}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS, help="folder for the PNGs (default: docs/)")
    parser.add_argument("views", nargs="*", metavar="VIEW", help=f"views to capture: {', '.join(VIEWS)} (default: all)")
    args = parser.parse_args(argv)
    if unknown := set(args.views) - set(VIEWS):
        parser.error(f"no such view: {', '.join(sorted(unknown))}")
    browser = find_browser()
    if isinstance(browser, str):
        print(f"cannot take screenshots: {browser}", file=sys.stderr)
        return 1
    with running_server(ServerConfig(), http=True) as server:
        driver = start_chromium(browser)
        try:
            for name in args.views or VIEWS:
                VIEWS[name](driver, server)
                path = args.out / f"playground-{name}.png"
                driver.save_screenshot(str(path))
                print(path)
        finally:
            driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
