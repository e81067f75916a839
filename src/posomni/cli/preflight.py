"""`posomni preflight`: is this install ready for go-live?"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.table import Table

from posomni.cli.common import EnvFileOption, console, run
from posomni.config import read_environment
from posomni.preflight import service

STYLE = {"pass": "[green]pass[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}


def register(app: typer.Typer) -> None:
    app.command("preflight")(preflight)


def preflight(
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (for pipelines)."),
    env_file: Path = EnvFileOption,
) -> None:
    """Check the pre-deployment list against this environment and its database: production configuration,
    database at head, encryption key backed up and its recovery drilled, Stripe live key, Sentry, a recent
    verified backup, rate limiting, no demo passwords, no local origins, TLS. Exit 1 when anything fails."""
    raw = read_environment(env_file)
    # uvicorn's own variable: whose X-Forwarded-For it believes (see the TLS check).
    report = run(service.run(raw, forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS")))
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        table = Table(title="POS-Omni preflight", show_lines=True)
        for name in ("check", "result", "what was found", "fix"):
            table.add_column(name, overflow="fold")
        for item in report.checks:
            table.add_row(item.title, STYLE[item.status], item.message, item.fix if item.status != "pass" else "")
        console.print(table)
        counts = report.counts()
        summary = f"{counts['pass']} passed, {counts['warn']} warning(s), {counts['fail']} failed"
        console.print(("[green]Ready: [/]" if report.ok else "[red]Not ready: [/]") + summary)
    if not report.ok:
        raise typer.Exit(code=1)
