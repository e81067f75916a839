"""Every error leaves the service as `{"error": {"code", "message", "details"}}`, never a bare 500 page."""

from __future__ import annotations

import httpx


async def test_unknown_route_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_wrong_method_is_a_json_405(client: httpx.AsyncClient) -> None:
    response = await client.delete("/health")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


async def test_request_id_is_kept_when_well_formed_and_replaced_when_not(client: httpx.AsyncClient) -> None:
    kept = await client.get("/health", headers={"X-Request-ID": "register-7:abc123"})
    assert kept.headers["x-request-id"] == "register-7:abc123"
    replaced = await client.get("/health", headers={"X-Request-ID": "bad id\r\nwith: injection"})
    assert replaced.headers["x-request-id"] != "bad id\r\nwith: injection"
    assert len(replaced.headers["x-request-id"]) == 32
