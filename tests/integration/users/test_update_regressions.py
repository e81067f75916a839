"""Requests the API fuzzer (tests/fuzz) found answered with a 500, kept as regressions."""

from __future__ import annotations

from posomni.config import Settings
from posomni.database import Database
from tests.support import running_app, seed_demo, sign_in


async def test_a_null_role_in_an_update_leaves_the_role_unchanged(settings: Settings, database: Database) -> None:
    await seed_demo(database)
    async with running_app(settings, database) as (_, http):
        admin = await sign_in(http, "admin")
        users = (await http.get("/users", headers=admin)).json()
        cashier = next(u for u in users if u["username"] == "cashier")
        response = await http.patch(
            f"/users/{cashier['id']}", headers=admin, json={"full_name": "Casey Cashier", "role": None, "store_id": 1}
        )
        assert response.status_code == 200, response.text
        assert response.json()["role"] == "cashier"
        assert response.json()["full_name"] == "Casey Cashier"
