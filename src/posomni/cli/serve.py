"""`posomni serve`: run the service with uvicorn."""

from __future__ import annotations

import os
from pathlib import Path

import typer
import uvicorn

from posomni.app import EMBEDDED_WORKER_VARIABLE, ENV_FILE_VARIABLE
from posomni.cli.common import EnvFileOption, console, err_console, settings_or_exit
from posomni.config import persist_generated_secret
from posomni.logging import configure_logging


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    host: str = typer.Option("127.0.0.1", "--host", envvar="POSOMNI_HOST", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", envvar="POSOMNI_PORT", help="Port to listen on."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="Worker processes."),
    with_worker: bool = typer.Option(
        False, "--with-worker", help="Also run the background worker (outbox, recovery) inside the service."
    ),
    env_file: Path = EnvFileOption,
) -> None:
    """Start the service. Refuses to start on a configuration error; prints the warnings otherwise."""
    settings = settings_or_exit(env_file)
    for warning in settings.warnings:
        err_console.print(f"[yellow]warning[/] {warning.variable} {warning.message}", highlight=False)
    # Several workers must sign with one secret: write the generated development secret before they start.
    if persist_generated_secret(settings, env_file):
        console.print(f"Saved a generated development JWT_SECRET to {env_file}.")
    configure_logging(settings.log_level, settings.log_format)
    os.environ[ENV_FILE_VARIABLE] = str(env_file)
    if with_worker:
        if workers > 1 and settings.database_kind == "sqlite":
            err_console.print("[yellow]With SQLite, run one process: the worker starts in each of them.[/]")
        os.environ[EMBEDDED_WORKER_VARIABLE] = "1"
    console.print(
        f"[bold green]POS-Omni[/] on http://{host}:{port}/ ({settings.env.value}, {settings.database_kind}) — "
        "sign in with the logins printed by `posomni db setup`; health at /health.",
        highlight=False,
    )
    uvicorn.run(
        "posomni.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        proxy_headers=True,
        server_header=False,
    )
