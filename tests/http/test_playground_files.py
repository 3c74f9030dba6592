"""The playground's static files: served at ``/`` and ``/playground/``, public, self-contained, locked down."""

from __future__ import annotations

import re

import pytest

from rnnserve.edge.http.playground import PLAYGROUND_DIR
from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import ModelSpec, ServerConfig
from rnnserve.testing.server import running_server
from tests.http.conftest import request

#: What a page or module loads: src/href attributes, module imports, CSS url().
REFERENCES = re.compile(r"""(?:src|href)="([^"]+)"|\bfrom\s+"([^"]+)"|import\(\s*"([^"]+)"|\burl\(([^)]+)\)""")


def _references(text: str) -> list[str]:
    return [next(group for group in match.groups() if group) for match in REFERENCES.finditer(text)]


def test_every_file_the_page_loads_is_served_from_this_server(base_url: str) -> None:
    page = request(base_url + "/")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    pending, seen = ["/"], set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        reply = request(base_url + path)
        assert reply.status == 200, path
        base = path.rsplit("/", 1)[0] if path != "/" else "/playground"
        for ref in _references(reply.body.decode()):
            assert not re.match(r"^[a-z]+:|^//", ref), f"{path} loads {ref} from elsewhere"
            pending.append(ref if ref.startswith("/") else f"{base}/{ref.removeprefix('./')}")
    served = {p.removeprefix("/playground/") for p in seen}
    assert {p.name for p in PLAYGROUND_DIR.iterdir()} <= served | {"index.html"}, "a shipped file nothing loads"
    assert request(base_url + "/playground/app.js").headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize("path", ["/playground/nope.js", "/playground/../server.py", "/playground/%2e%2e/server.py"])
def test_nothing_else_is_served(base_url: str, path: str) -> None:
    reply = request(base_url + path)
    assert reply.status == 404 and reply.json()["error"]["code"] == "not_found"


def test_the_page_is_public_but_the_api_it_calls_is_not(toy_host: PluginHost) -> None:
    config = ServerConfig(models=(ModelSpec("a", "toy-assistant"),), default_models=False, auth_token="tok")
    with running_server(config, toy_host, http=True) as srv:
        assert request(srv.http_url + "/").status == 200
        assert request(srv.http_url + "/playground/style.css").status == 200
        assert request(srv.http_url + "/api/v1/models").status == 401
        assert request(srv.http_url + "/favicon.ico").status == 401  # only the page's own paths are public
