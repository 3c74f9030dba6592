"""The playground in headless Chromium against a real server (toy models): each view does what it says."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[dev]')")

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from rnnserve.testing.server import ServerThread
from tests.browser.pages import by_id, choose_model, open_view, texts, wait
from tests.http.conftest import request

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

SUGGESTIONS = "#write-suggestions .text"


def _ghost(driver: Chrome) -> str:
    return str(driver.execute_script("return document.querySelector('#write-mirror .ghost').textContent"))


def _in_step(driver: Chrome, document: str) -> bool:
    """The session's document (the text before the cursor) has ``document``'s length, as the server counts."""
    return f" · {len(document)} chars" in by_id(driver, "write-status").text


def test_write_suggests_as_you_type_tab_accepts_and_edits_keep_the_session_in_step(
        page: Chrome, http_server: ServerThread) -> None:
    open_view(page, http_server, "write")
    choose_model(page, "write-model", "toy-assist")
    text = by_id(page, "write-text")
    text.send_keys("Hello Eli")
    wait(page, lambda d: texts(d, SUGGESTIONS)[:2] == ["Elizabeth", "Elinor"] and _ghost(d) == "zabeth",
         "word completions of 'Eli', the first as ghost text")
    assert "and so on" in texts(page, SUGGESTIONS)[2]  # the phrase kind, also asked for
    assert int(by_id(page, "latency-count").text) >= 1 and by_id(page, "latency-last").text.endswith("ms")

    text.send_keys(Keys.TAB)  # accepts the ghost
    assert text.get_attribute("value") == "Hello Elizabeth"
    assert page.switch_to.active_element == text  # Tab was taken, focus stayed
    wait(page, lambda d: _in_step(d, "Hello Elizabeth") and _ghost(d) == " and so on", "the phrase after 'Elizabeth'")

    text.send_keys(Keys.BACKSPACE * 4)
    wait(page, lambda d: _in_step(d, "Hello Eliza") and _ghost(d) == "beth", "suggestions for 'Hello Eliza'")

    text.send_keys(Keys.ALT, Keys.ARROW_DOWN)  # choose the next suggestion: the phrase
    wait(page, lambda d: _ghost(d) == " and so on", "the second suggestion as ghost text")
    text.send_keys(Keys.ESCAPE)  # hidden: Tab leaves the text again
    wait(page, lambda d: _ghost(d) == "" and texts(d, SUGGESTIONS) == [], "suggestions hidden")

    text.send_keys(Keys.HOME, "Th")  # an edit before the cursor's old place: the document is now "Th"
    wait(page, lambda d: _in_step(d, "Th") and texts(d, SUGGESTIONS)[:3] == ["The", "Then", "There"],
         "suggestions for the text before the moved cursor")
    assert _ghost(page) == ""  # no ghost in the middle of a line
    assert text.get_attribute("value") == "ThHello Eliza"


def test_tab_typed_ahead_of_the_suggestions_takes_the_fresh_ones(page: Chrome, http_server: ServerThread) -> None:
    open_view(page, http_server, "write")
    choose_model(page, "write-model", "toy-assist")
    text = by_id(page, "write-text")
    wait(page, lambda d: texts(d, SUGGESTIONS), "the suggestions for the empty document")
    text.send_keys("Hello Em", Keys.TAB)  # no pause: Tab may come before "Em"'s suggestions
    wait(page, lambda d: text.get_attribute("value") == "Hello Emma", "Tab to complete 'Em'")
    assert page.switch_to.active_element == text


def test_generate_streams_the_output_and_shows_the_seed(page: Chrome, http_server: ServerThread) -> None:
    open_view(page, http_server, "generate")
    choose_model(page, "generate-model", "toy-slow")
    prompt = by_id(page, "generate-prompt")
    prompt.clear()
    prompt.send_keys("the qu")
    for field, value in (("max", "30"), ("temperature", "0"), ("seed", "5")):
        by_id(page, f"generate-{field}").clear()
        by_id(page, f"generate-{field}").send_keys(value)
    page.execute_script("""window.appends = 0;  // count the chunks as the page shows them
        new MutationObserver(() => { window.appends += 1; }).observe(document.getElementById('generate-output'),
                                                                   {childList: true, subtree: true});""")
    prompt.send_keys(Keys.CONTROL, Keys.ENTER)

    def finished(driver: Chrome) -> str:
        meta = driver.find_elements(By.CSS_SELECTOR, "#generate-output .meta")
        return meta[0].text if meta and "tokens" in meta[0].text else ""

    meta = wait(page, finished, "the generation to finish")
    expected = request(http_server.http_url + "/api/v1/generate", {
        "model": "toy-slow", "prompt": "the qu", "max_new_tokens": 30, "temperature": 0, "seed": 5}).json()
    completion = expected["completions"][0]
    shown = page.find_element(By.CSS_SELECTOR, "#generate-output .generated").text
    assert shown == completion["text"].strip() and "seed 5" in meta and "30 tokens · length" in meta
    assert page.execute_script("return window.appends") > 3  # streamed in pieces, not at the end
    assert by_id(page, "generate-run").text == "Generate"


def test_translate_lists_the_n_best_and_draws_the_chosen_attention(page: Chrome, http_server: ServerThread) -> None:
    open_view(page, http_server, "translate")
    choose_model(page, "translate-model", "toy-tr")
    source = by_id(page, "translate-text")
    source.clear()
    source.send_keys("hello world")
    by_id(page, "translate-n-best").clear()
    by_id(page, "translate-n-best").send_keys("2")
    by_id(page, "translate-beam").clear()
    by_id(page, "translate-beam").send_keys("2")
    by_id(page, "translate-run").click()
    hypotheses = wait(page, lambda d: texts(d, ".hypothesis .text"), "the hypotheses")
    assert hypotheses == ["HELLO WORLD", "HELLO WORLD !"]
    cells = page.find_elements(By.CSS_SELECTOR, "#translate-attention svg rect.cell")
    assert [c.get_attribute("data-weight") for c in cells] == ["1.0000", "0.0000", "0.0000", "1.0000"]
    assert texts(page, "#translate-attention svg text") == ["hello", "world", "HELLO", "WORLD"]
    page.find_elements(By.CSS_SELECTOR, ".hypothesis input")[1].send_keys(Keys.SPACE)  # choose by keyboard
    wait(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#translate-attention svg rect.cell")) == 6,
         "the second hypothesis' 3 x 2 attention")


def test_models_view_lists_every_model_with_state_card_and_counters(page: Chrome, http_server: ServerThread) -> None:
    open_view(page, http_server, "models")
    names = wait(page, lambda d: texts(d, ".model h2"), "the model list")
    assert set(names) == {m["name"] for m in request(http_server.http_url + "/api/v1/models").json()["models"]}
    broken = page.find_element(By.CSS_SELECTOR, "article[aria-labelledby='model-toy-broken']")
    assert "failed" in broken.find_element(By.CSS_SELECTOR, ".badge").text
    assert "weights are corrupt" in broken.text
    toy = page.find_element(By.CSS_SELECTOR, "article[aria-labelledby='model-toy']")
    assert "reciting toy model" in toy.text and "ready" in toy.text and "requests" in toy.text


def test_session_edits_are_counted_in_code_points_as_the_server_counts(page: Chrome, http_server: ServerThread) -> None:
    open_view(page, http_server, "write")
    cases = [("abc", "abd"), ("ab😀", "ab"), ("xyz", "abc"), ("", "hi"), ("same", "same"), ("héllo", "hé")]
    result = page.execute_async_script("""const [cases, done] = arguments;
        import('/playground/session.js').then((m) => done(cases.map(([a, b]) => m.edits(a, b))));""", cases)
    assert result == [
        [{"delete": {"chars": 1}}, {"append": {"text": "d"}}],
        [{"delete": {"chars": 1}}],  # one code point, two UTF-16 units
        [{"reset": {}}, {"append": {"text": "abc"}}],
        [{"append": {"text": "hi"}}],
        [],
        [{"delete": {"chars": 3}}],
    ]
