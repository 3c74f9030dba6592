"""``GET /docs``: the OpenAPI document as one self-contained HTML page (no script, nothing fetched)."""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = """body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{font-family:ui-monospace,monospace;font-size:13px}h2{border-bottom:1px solid #ddd;margin-top:2.5rem}
.op{margin:1.2rem 0;padding:.6rem .9rem;border-left:4px solid #4a7;background:#f7faf8}
.verb{font-weight:bold;text-transform:uppercase;margin-right:.5rem}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #eee;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{font-weight:600}.type{color:#555;white-space:nowrap}"""


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
    if "allOf" in schema:
        return _type(schema["allOf"][0])
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return "one of " + ", ".join(escape(str(v)) for v in schema["enum"])
    if "const" in schema:
        return f'"{escape(str(schema["const"]))}"'
    kind = schema.get("type", "any")
    kind = " | ".join(kind) if isinstance(kind, list) else kind
    if schema.get("type") == "object" and isinstance(schema.get("additionalProperties"), dict):
        kind = f"map of {_type(schema['additionalProperties'])}"
    return escape(kind)


def _schema(name: str, schema: dict[str, Any]) -> str:
    parts = [f'<h3 id="schema-{escape(name)}">{escape(name)}</h3>']
    if schema.get("description"):
        parts.append(f"<p>{escape(schema['description'])}</p>")
    properties = schema.get("properties", {})
    if properties:
        rows = "".join(f"<tr><td><code>{escape(field)}</code></td><td class=type>{_type(prop)}</td>"
                       f"<td>{escape(prop.get('description', ''))}</td></tr>" for field, prop in properties.items())
        parts.append(f"<table><tr><th>field</th><th>type</th><th>description</th></tr>{rows}</table>")
    elif "enum" in schema or "type" in schema:
        parts.append(f"<p class=type>{_type({k: v for k, v in schema.items() if k != 'description'})}</p>")
    return "".join(parts)


def _operation(path: str, verb: str, op: dict[str, Any]) -> str:
    parts = [f'<div class=op><span class=verb>{escape(verb)}</span><code>{escape(path)}</code>'
             f" — {escape(op.get('summary', ''))}"]
    if op.get("description"):
        parts.append(f"<p>{escape(op['description'])}</p>")
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if body:
        parts.append(f"<div>request: {_type(body)}</div>")
    responses = []
    for status, response in op.get("responses", {}).items():
        content = response.get("content", {})
        schema = next((c["schema"] for c in content.values() if "schema" in c), None)
        shape = f" ({_type(schema)})" if schema else ""
        responses.append(f"<li><b>{escape(status)}</b> {escape(response.get('description', ''))}{shape}</li>")
    parts.append(f"<ul>{''.join(responses)}</ul></div>")
    return "".join(parts)


def docs_html(document: dict[str, Any]) -> str:
    """The page for ``document`` (an OpenAPI 3.1 dict)."""
    info = document["info"]
    ops = "".join(_operation(path, verb, op) for path, item in document["paths"].items() for verb, op in item.items())
    schemas = "".join(_schema(name, s) for name, s in sorted(document["components"]["schemas"].items()))
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(info['title'])}</title>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{STYLE}</style></head><body>"
            f"<h1>{escape(info['title'])} <small>{escape(info['version'])}</small></h1>"
            f"<p>{escape(info['description'])}</p><p>Machine-readable: <a href='/openapi.json'>/openapi.json</a> "
            f"(OpenAPI {escape(document['openapi'])}).</p><h2>Operations</h2>{ops}<h2>Schemas</h2>{schemas}"
            "</body></html>")
