"""The `posomni` command line."""

from __future__ import annotations

import typer

from posomni import __version__
from posomni.cli import (
    audit,
    backup,
    catalog,
    compliance,
    db,
    env,
    health,
    keys,
    naxml,
    outbox,
    payments,
    preflight,
    serve,
    users,
    worker,
)

app = typer.Typer(
    name="posomni",
    help="POS-Omni: set up, run and operate the liquor-store point of sale.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
env.register(app)
app.add_typer(db.app, name="db")
app.add_typer(outbox.app, name="outbox")
app.add_typer(users.app, name="users")
app.add_typer(audit.app, name="audit")
app.add_typer(catalog.app, name="catalog")
app.add_typer(compliance.app, name="compliance")
app.add_typer(payments.app, name="payments")
app.add_typer(backup.app, name="backup")
app.add_typer(naxml.app, name="naxml")
app.add_typer(naxml.backoffice_app, name="backoffice")
keys.register(app)
serve.register(app)
health.register(app)
worker.register(app)
preflight.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"posomni {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """POS-Omni: set up, run and operate the liquor-store point of sale."""


def main() -> None:
    app()
