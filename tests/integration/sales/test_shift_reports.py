"""X and Z reports over a shift with a return and a post-void: every format, net figures that add up, and a
drawer counted over as well as short."""

from __future__ import annotations

import csv
import io
from typing import Any

from tests.integration.sales.conftest import CHIPS, COKE, Register
from tests.support import PINS


async def _cash_sale(register: Register, sku: str, quantity: int, tendered: int) -> dict[str, Any]:
    sale = await register.new_sale()
    await register.scan(sale["id"], sku, quantity)
    done = await register.complete(sale["id"], [{"kind": "cash", "tendered_cents": tendered}])
    assert done.status_code == 200, done.text
    return dict(done.json())


async def test_x_report_in_json_html_and_csv_says_the_same(register: Register) -> None:
    sale = await _cash_sale(register, COKE, 2, 1000)
    url = f"/shifts/{register.shift_id}/x-report"
    as_json = (await register.http.get(url, headers=register.cashier)).json()
    assert (as_json["kind"], as_json["sales_count"], as_json["net_sales_cents"]) == ("X", 1, sale["total_cents"])
    as_csv = await register.http.get(url, params={"format": "csv"}, headers=register.cashier)
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = dict(csv.reader(io.StringIO(as_csv.text)))
    assert rows["kind"] == "X"
    assert rows["net_sales_cents"] == str(sale["total_cents"])
    assert rows["tenders.cash"] == str(sale["total_cents"])
    assert rows["expected_cash_cents"] == str(as_json["expected_cash_cents"])
    as_html = await register.http.get(url, params={"format": "html"}, headers=register.cashier)
    assert as_html.status_code == 200
    assert as_html.headers["content-type"].startswith("text/html")
    assert f"X report — shift {register.shift_id}" in as_html.text
    assert "Expected cash" in as_html.text
    assert "Over / short" not in as_html.text  # not counted yet


async def test_z_report_nets_returns_and_voids_and_its_tax_adds_up(register: Register) -> None:
    http, shift = register.http, register.shift_id
    kept = await _cash_sale(register, CHIPS, 3, 2000)  # 3 x $4.79 = $14.37 + 7 % ($1.01) = $15.38
    voided = await _cash_sale(register, COKE, 2, 1000)  # 2 x $3.29 = $6.58 + 7 % ($0.46) = $7.04
    assert (kept["total_cents"], kept["tax_cents"], voided["total_cents"]) == (1538, 101, 704)
    returned = await http.post(
        "/returns",
        json={"receipt_number": kept["receipt_number"], "reason": "one bag split",
              "lines": [{"original_line_id": kept["lines"][0]["id"], "quantity": 1, "restock": False}]},
        headers=register.cashier,
    )  # fmt: skip
    assert returned.status_code == 201, returned.text
    refund = returned.json()
    assert (refund["total_cents"], refund["tax_cents"]) == (479 + 34, 34)
    void = await http.post(
        f"/sales/{voided['id']}/void",
        json={"reason": "rang up twice", "manager": {"username": "manager", "secret": PINS["manager"]}},
        headers=register.cashier,
    )
    assert void.status_code == 200, void.text

    x = (await http.get(f"/shifts/{shift}/x-report", headers=register.cashier)).json()
    assert (x["sales_count"], x["returns_count"], x["voids_count"]) == (1, 1, 1)
    assert (x["returns_cents"], x["voids_cents"]) == (513, 704)
    assert x["net_sales_cents"] == 1538 - 513
    assert (x["tax_cents"], x["returns_tax_cents"], x["net_tax_cents"]) == (101, 34, 101 - 34)
    assert sum(x["tax_by_class"].values()) == x["net_tax_cents"]
    # The voided sale's cash came in and went out again; the return's cash went out.
    assert x["tenders"] == {"cash": 1538 - 513}
    assert x["expected_cash_cents"] == 20000 + 1538 - 513

    over = await http.post(
        f"/shifts/{shift}/close", json={"counted_cash_cents": x["expected_cash_cents"] + 40}, headers=register.manager
    )
    assert over.status_code == 200, over.text
    z = over.json()
    assert (z["kind"], z["counted_cash_cents"], z["over_short_cents"]) == ("Z", x["expected_cash_cents"] + 40, 40)
    for key in ("sales_count", "net_sales_cents", "returns_cents", "voids_cents", "net_tax_cents", "tenders"):
        assert z[key] == x[key], key
    stored = (await http.get(f"/shifts/{shift}/z-report", headers=register.manager)).json()
    assert (stored["over_short_cents"], stored["net_tax_cents"]) == (40, 67)
    rows = dict(
        csv.reader(io.StringIO((await http.get(f"/shifts/{shift}/z-report", params={"format": "csv"},
                                               headers=register.manager)).text))
    )  # fmt: skip
    assert (rows["over_short_cents"], rows["returns_tax_cents"], rows["net_tax_cents"]) == ("40", "34", "67")
    html = (await http.get(f"/shifts/{shift}/z-report", params={"format": "html"}, headers=register.manager)).text
    assert "Tax on returns" in html
    assert "Over / short" in html
    assert "$0.40" in html
