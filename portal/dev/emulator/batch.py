"""JSON batching for the Graph emulator: POST /v1.0/$batch (concepts/json-batching.md)."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, request

from .graph import BATCH_LIMIT, _bad_request, _json, bp, emu

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _problem(requests: Any) -> str | None:
    """Return why a batch payload is malformed, or None."""
    if not isinstance(requests, list) or not requests:
        return "Invalid batch payload format: 'requests' must be a non-empty array."
    if len(requests) > BATCH_LIMIT:
        return f"Number of batch requests exceeds {BATCH_LIMIT}."
    ids: set[str] = set()
    for item in requests:
        problem = _item_problem(item, ids)
        if problem:
            return problem
        ids.add(item["id"])
    for item in requests:
        unknown = set(item.get("dependsOn", [])) - ids
        if unknown:
            return f"Request id {item['id']} depends on unknown request(s) {sorted(unknown)}."
    return None


def _item_problem(item: Any, seen: set[str]) -> str | None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        return "Each batch request needs a string 'id'."
    if item["id"] in seen:
        return f"Batch request ids must be unique: '{item['id']}' repeats."
    if item.get("method", "").upper() not in METHODS or not isinstance(item.get("url"), str):
        return f"Batch request {item['id']} needs a 'method' and a relative 'url'."
    if item["url"].lower().startswith(("http:", "https:")):
        return f"Batch request {item['id']}: the url must be relative."
    headers = item.get("headers", {})
    if not isinstance(headers, dict) or not isinstance(item.get("dependsOn", []), list):
        return f"Batch request {item['id']}: 'headers' must be an object, 'dependsOn' an array."
    if "body" in item and "content-type" not in {k.lower() for k in headers}:
        return f"Write request id : {item['id']} does not contain Content-Type header or body."
    return None


def _ordered(requests: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Order requests so that dependencies come first; None on a cycle."""
    done: set[str] = set()
    ordered: list[dict[str, Any]] = []
    pending = list(requests)
    while pending:
        ready = [r for r in pending if set(r.get("dependsOn", [])) <= done]
        if not ready:
            return None
        for item in ready:
            ordered.append(item)
            done.add(item["id"])
        pending = [r for r in pending if r["id"] not in done]
    return ordered


def _run(item: dict[str, Any]) -> dict[str, Any]:
    """Run one inner request through the same app, so it is counted and throttled alone."""
    headers = {str(k): str(v) for k, v in item.get("headers", {}).items()}
    headers["Authorization"] = request.headers.get("Authorization", "")
    if "client-request-id" in request.headers:
        headers.setdefault("client-request-id", request.headers["client-request-id"])
    url = item["url"] if item["url"].startswith("/") else "/" + item["url"]
    body = item.get("body")
    data = body if isinstance(body, str) or body is None else json.dumps(body)
    inner = current_app.test_client().open(
        "/v1.0" + url,
        base_url=emu().url,
        method=item["method"].upper(),
        headers=headers,
        data=data,
        environ_base={"emulator.inner": True, "REMOTE_ADDR": request.remote_addr or ""},
    )
    return _response_item(item["id"], inner)


def _response_item(item_id: str, inner: Any) -> dict[str, Any]:
    kept = ("Content-Type", "Retry-After", "request-id", "client-request-id", "x-ms-resource-unit")
    result: dict[str, Any] = {
        "id": item_id,
        "status": inner.status_code,
        "headers": {k: inner.headers[k] for k in kept if k in inner.headers},
    }
    text = inner.get_data(as_text=True)
    try:
        result["body"] = json.loads(text) if text else None
    except json.JSONDecodeError:
        result["body"] = text
    return result


def _failed_dependency(item_id: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "status": 424,
        "headers": {"Content-Type": "application/json"},
        "body": {"error": {"code": "FailedDependency", "message": "A dependency failed."}},
    }


@bp.post("/$batch", endpoint="batch")
def batch() -> Response:
    """Run up to 20 requests; answer them in any order (dependencies honoured)."""
    payload = request.get_json(silent=True)
    requests = payload.get("requests") if isinstance(payload, dict) else None
    problem = _problem(requests)
    ordered = None if problem else _ordered(requests)  # type: ignore[arg-type]
    if ordered is None:
        return _bad_request(problem or "Batch dependencies form a cycle.", "BadRequest")
    status: dict[str, int] = {}
    responses = []
    for item in ordered:
        failed = any(status[d] >= 400 for d in item.get("dependsOn", []))
        result = _failed_dependency(item["id"]) if failed else _run(item)
        status[item["id"]] = result["status"]
        responses.append(result)
    emu().shuffle(responses)  # Graph answers in any order; callers must match on id
    return _json({"responses": responses})
