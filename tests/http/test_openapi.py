"""``/openapi.json`` is a valid OpenAPI 3.1 document describing every route; ``/docs`` is a self-contained page."""

from __future__ import annotations

import re

from openapi_spec_validator import validate
from starlette.routing import Route, WebSocketRoute

from rnnserve.testing.server import ServerThread
from tests.http.conftest import request


def test_the_document_is_valid_openapi_3_1(base_url: str) -> None:
    document = request(base_url + "/openapi.json").json()
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_every_route_is_documented(http_server: ServerThread, base_url: str) -> None:
    document = request(base_url + "/openapi.json").json()
    assert http_server.app.http is not None
    routes = [r for r in http_server.app.http.app.routes if isinstance(r, Route | WebSocketRoute)]
    documented = {re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", path) for path in document["paths"]}
    for route in routes:
        assert re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path) in documented, route.path


def test_schemas_carry_the_protos_documentation(base_url: str) -> None:
    schemas = request(base_url + "/openapi.json").json()["components"]["schemas"]
    generate = schemas["rnnserve.v1.GenerateRequest"]
    assert set(generate["properties"]) >= {"model", "prompt", "max_new_tokens", "temperature", "seed", "stop"}
    assert generate["properties"]["stop"]["type"] == "array"
    assert all(p.get("description") for p in generate["properties"].values())
    assert schemas["rnnserve.v1.FinishReason"]["enum"][1] == "FINISH_REASON_LENGTH"
    assert schemas["rnnserve.v1.ModelStats"]["properties"]["backend_counters"]["type"] == "object"


def test_docs_page_loads_nothing_from_elsewhere(base_url: str) -> None:
    page = request(base_url + "/docs")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    html = page.body.decode()
    assert "/v1/completions" in html and "rnnserve.v1.TranslateRequest" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the page must not load anything remote"
    assert "<script" not in html
