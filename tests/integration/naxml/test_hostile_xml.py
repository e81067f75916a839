"""Hostile pricebook files are refused before anything is read from them or imported: entity expansion
(billion laughs), external entities (a local file, a URL), external DTDs, parameter entities, oversized files.
The "no file read, no URL fetched" part is shown with a marker file and a loopback server counting requests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from posomni.backoffice.naxml.parse import PricebookRefused, parse_maintenance, parse_rest
from posomni.database import Database
from tests.fakes.http_server import run_in_thread
from tests.integration.naxml.conftest import Cli, catalog_state
from tests.support import seed_demo

BODY = (
    '<NAXML-MaintenanceRequest version="3.4"><ItemMaintenance><ITTDetail><ItemCode>'
    "<POSCode>081234000011</POSCode></ItemCode><ITTData><Description>{text}</Description>"
    "<RegularSellPrice>0.01</RegularSellPrice></ITTData></ITTDetail></ItemMaintenance></NAXML-MaintenanceRequest>"
)
BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE NAXML-MaintenanceRequest [\n<!ENTITY lol "lol">\n'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">\n' for i in range(1, 10))
    + "]>\n"
    + BODY.format(text="&lol9;")
)


class Counter:
    def __init__(self) -> None:
        self.hits: list[str] = []
        self.lock = threading.Lock()


@pytest.fixture(scope="module")
def listener() -> Iterator[tuple[str, Counter]]:
    """A loopback server that records every request: an XML parser that fetched anything would show up here."""
    counter = Counter()
    app = FastAPI()

    @app.get("/{path:path}")
    async def anything(path: str) -> PlainTextResponse:
        with counter.lock:
            counter.hits.append(path)
        return PlainTextResponse('<!ENTITY leak "LEAKED-FROM-THE-NETWORK">')

    with run_in_thread(app) as base_url:
        yield base_url, counter


def hostile_files(tmp_path: Path, base_url: str) -> dict[str, tuple[str, str]]:
    """name → (file content, the reason it must be refused with)."""
    marker = tmp_path / "secret.txt"
    marker.write_text("TOP-SECRET-MARKER", encoding="utf-8")
    return {
        "billion_laughs": (BILLION_LAUGHS, "dtd_forbidden"),
        "external_entity_passwd": (
            '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
            + BODY.format(text="&xxe;"),
            "dtd_forbidden",
        ),
        "external_entity_marker": (
            f'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "{marker.as_uri()}">]>\n'
            + BODY.format(text="&xxe;"),
            "dtd_forbidden",
        ),
        "external_dtd": (
            f'<?xml version="1.0"?>\n<!DOCTYPE NAXML-MaintenanceRequest SYSTEM "{base_url}/evil.dtd">\n'
            + BODY.format(text="&leak;"),
            "dtd_forbidden",
        ),
        "parameter_entity": (
            f'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY % remote SYSTEM "{base_url}/remote.dtd"> %remote;]>\n'
            + BODY.format(text="&leak;"),
            "dtd_forbidden",
        ),
        "undeclared_entity": (BODY.format(text="&xxe;"), "not_xml"),
        "not_xml": ("this is not < xml", "not_xml"),
        "wrong_root": ('<NAXML-MovementReport version="3.4"/>', "not_a_maintenance_request"),
    }


@pytest.mark.parametrize(
    "name",
    [
        "billion_laughs", "external_entity_passwd", "external_entity_marker", "external_dtd", "parameter_entity",
        "undeclared_entity", "not_xml", "wrong_root",
    ],
)  # fmt: skip
async def test_hostile_file_is_refused_and_nothing_is_read_or_imported(
    name: str, database: Database, run: Cli, tmp_path: Path, listener: tuple[str, Counter]
) -> None:
    base_url, counter = listener
    content, reason = hostile_files(tmp_path, base_url)[name]
    await seed_demo(database)
    before = await catalog_state(database)
    hits_before = len(counter.hits)
    file = tmp_path / f"{name}.xml"
    file.write_text(content, encoding="utf-8")

    with pytest.raises(PricebookRefused) as refused:
        parse_maintenance(file.read_bytes())
    assert refused.value.reason == reason
    result = await run("naxml", "import-pricebook", str(file))
    assert result.exit_code == 1
    assert "nothing imported" in result.output
    for leaked in ("root:", "TOP-SECRET-MARKER", "LEAKED-FROM-THE-NETWORK", "lollollol"):
        assert leaked not in result.output
    assert len(counter.hits) == hits_before, counter.hits
    assert await catalog_state(database) == before


async def test_a_file_over_the_size_bound_is_refused_unread(database: Database, run: Cli, tmp_path: Path) -> None:
    await seed_demo(database)
    before = await catalog_state(database)
    file = tmp_path / "huge.xml"
    # Not even XML: had it been read and parsed, the refusal would say so ("not_xml") instead.
    file.write_bytes(b"\0" * 4096)
    result = await run("naxml", "import-pricebook", str(file), "--max-bytes", "1024")
    assert result.exit_code == 1
    assert "4,096 bytes; at most 1,024 are read (nothing was imported)" in result.output
    assert await catalog_state(database) == before
    with pytest.raises(PricebookRefused) as refused:
        parse_rest(b" " * (64 * 1024 * 1024 + 1))
    assert refused.value.reason == "too_large"


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"{not json", "not_json"), (b"[1, 2]", "invalid_pricebook"), (b'{"items": {"a": 1}}', "invalid_pricebook")],
)
def test_a_rest_pricebook_that_is_not_the_expected_json_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(PricebookRefused) as refused:
        parse_rest(body)
    assert refused.value.reason == reason
