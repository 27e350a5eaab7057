"""``/docs``: the API reference, rendered by the app from its own OpenAPI schema (no CDN, no scripts)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

METHODS = ("get", "post", "put", "patch", "delete")


def endpoints(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Every operation of the schema: method, path, summary, tag, parameters and body fields."""
    out = []
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = [
                {
                    "name": p["name"],
                    "in": p["in"],
                    "required": p.get("required", False),
                    "type": _type(p.get("schema", {}), schema),
                    "description": p.get("description", ""),
                }
                for p in op.get("parameters", [])
            ]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            fields = []
            if body is not None:
                resolved = _resolve(body, schema)
                required = set(resolved.get("required", []))
                for name, prop in resolved.get("properties", {}).items():
                    fields.append(
                        {
                            "name": name,
                            "required": name in required,
                            "type": _type(prop, schema),
                            "description": prop.get("description", ""),
                        }
                    )
            out.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "tag": (op.get("tags") or ["other"])[0],
                    "parameters": params,
                    "body": fields,
                }
            )
    return out


def _resolve(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref and ref.startswith("#/components/schemas/"):
        return schema.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[1], {})
    return node


def _type(node: dict[str, Any], schema: dict[str, Any]) -> str:
    node = _resolve(node, schema)
    if "enum" in node:
        return " | ".join(str(v) for v in node["enum"])
    if "anyOf" in node:
        return " | ".join(_type(n, schema) for n in node["anyOf"])
    if node.get("type") == "array":
        return f"list of {_type(node.get('items', {}), schema)}"
    kind = node.get("type", "object")
    return f"{kind} ({node['format']})" if "format" in node else str(kind)


@router.get("/docs", response_class=HTMLResponse)
def docs_page(request: Request) -> HTMLResponse:
    from churnguard.web.render import render_page

    schema = request.app.openapi()
    return render_page(
        request,
        "docs.html.j2",
        {"endpoints": endpoints(schema), "title": schema["info"]["title"], "version": schema["info"]["version"]},
        user=None,
    )
