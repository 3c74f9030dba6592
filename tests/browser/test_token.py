"""The playground against a server with a bearer token: the page loads, asks for the token, then works,
including the Session WebSocket (the token as a subprotocol) and never with the token in a URL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[dev]')")

from selenium.webdriver.common.keys import Keys

from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import ModelSpec, ServerConfig
from rnnserve.testing.server import ServerThread, running_server
from tests.browser.conftest import console_errors
from tests.browser.pages import by_id, choose_model, open_view, texts, wait

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

TOKEN = "pl4yground-tøken"


@pytest.fixture(scope="module")
def guarded(toy_host: PluginHost) -> Iterator[ServerThread]:
    config = ServerConfig(models=(ModelSpec("assist", "toy-assistant"),), default_models=False, auth_token=TOKEN)
    with running_server(config, toy_host, http=True) as srv:
        yield srv


def test_the_token_field_unlocks_the_api_and_the_session(page: Chrome, guarded: ServerThread) -> None:
    open_view(page, guarded, "write")
    wait(page, lambda d: "token" in by_id(d, "notice").text, "the page to ask for the token")
    assert page.switch_to.active_element == by_id(page, "token")
    refused = console_errors(page)  # the browser logs the refused calls: those, and nothing else
    assert refused and all("401" in entry["message"] for entry in refused)

    by_id(page, "token").send_keys(TOKEN, Keys.ENTER)
    choose_model(page, "write-model", "assist")
    by_id(page, "write-text").send_keys("Eli")
    wait(page, lambda d: texts(d, "#write-suggestions .text")[:2] == ["Elizabeth", "Elinor"],
         "suggestions over the token-carrying WebSocket")
    assert page.execute_script("return sessionStorage.getItem('rnnserve.token')") == TOKEN
    assert TOKEN not in page.current_url
