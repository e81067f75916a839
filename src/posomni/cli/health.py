"""`posomni health`: check a running service, or start one temporarily and check it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.table import Table

from posomni.app import ENV_FILE_VARIABLE
from posomni.cli.common import EnvFileOption, console, err_console, settings_or_exit

STATUS_STYLE = {"ok": "green", "degraded": "yellow", "down": "red"}


def register(app: typer.Typer) -> None:
    app.command("health")(health)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def temporary_server(env_file: Path, timeout: float) -> Iterator[str]:
    """Run the service in a child process on a free loopback port; always stopped on exit."""
    port = _free_port()
    env = {**os.environ, ENV_FILE_VARIABLE: str(env_file)}
    command = [
        sys.executable, "-m", "uvicorn", "posomni.app:create_app_from_env", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    # A fixed argument list of our own interpreter and module, no shell.
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # noqa: S603
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise RuntimeError(f"the service exited during start-up:\n{output.strip()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not start within {timeout:g}s") from None
                time.sleep(0.1)
        yield url
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout:
            process.stdout.close()


def _detail(details: dict[str, Any]) -> str:
    parts = []
    for key, value in details.items():
        if isinstance(value, dict):
            continue
        parts.append(f"{key}={value}")
    return ", ".join(parts)


def _print(report: dict[str, Any], url: str) -> None:
    status = report.get("status", "down")
    table = Table(title=f"POS-Omni health at {url}")
    table.add_column("component")
    table.add_column("status")
    table.add_column("critical")
    table.add_column("details", overflow="fold")
    for name, component in report.get("components", {}).items():
        style = STATUS_STYLE.get(component["status"], "white")
        table.add_row(
            name,
            f"[{style}]{component['status']}[/]",
            "yes" if component.get("critical") else "no",
            _detail(component.get("details", {})),
        )
    console.print(table)
    console.print(f"overall: [{STATUS_STYLE.get(status, 'white')}]{status}[/]")


def health(
    url: str = typer.Option("", "--url", help="Check this running service instead of starting one."),
    env_file: Path = EnvFileOption,
    as_json: bool = typer.Option(False, "--json", help="Print the raw JSON report."),
    strict: bool = typer.Option(False, "--strict", help="Also fail when an optional component is degraded."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for start-up and for the answer."),
) -> None:
    """Call /health and print each component; exit 0 when the service can sell, 1 otherwise."""
    try:
        if url:
            report = _fetch(url.rstrip("/"), timeout)
            target = url
        else:
            settings_or_exit(env_file)
            with temporary_server(env_file, timeout) as started:
                report = _fetch(started, timeout)
                target = started + " (temporary)"
    except (RuntimeError, httpx.HTTPError, ValueError) as exc:
        err_console.print(f"[red]Health check failed:[/] {exc}")
        raise typer.Exit(code=1) from None
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print(report, target)
    status = report.get("status")
    healthy = status == "ok" or (status == "degraded" and not strict)
    raise typer.Exit(code=0 if healthy else 1)


def _fetch(base: str, timeout: float) -> dict[str, Any]:
    response = httpx.get(f"{base}/health", timeout=timeout)
    if response.status_code not in (200, 503):
        raise ValueError(f"/health answered HTTP {response.status_code}")
    document: dict[str, Any] = response.json()
    return document
