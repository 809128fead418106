"""The `vuosikello` command: serve, database upgrades, organisation import, definition checks, audit, tokens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from api.observability import uvicorn_log_config
from engine.clock import SystemClock
from engine.db import Database, make_database
from engine.errors import DefinitionError
from engine.registry import Registry
from engine.service import Engine, UnitOfWork
from engine.settings import Settings, get_settings

app = typer.Typer(help="Vuosikello: workflows and reminders for cooperation between Finnish public bodies.",
                  no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
org_app = typer.Typer(help="The organisation register.", no_args_is_help=True)
wf_app = typer.Typer(help="Workflow definitions.", no_args_is_help=True)
audit_app = typer.Typer(help="The event log.", no_args_is_help=True)
people_app = typer.Typer(help="People: passwords of coordinators and administrators.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(org_app, name="organisations")
app.add_typer(wf_app, name="workflows")
app.add_typer(audit_app, name="audit")
app.add_typer(people_app, name="people")
seal_app = typer.Typer(help="The seal of the sealed records (README: Sealed records).", no_args_is_help=True)
app.add_typer(seal_app, name="seal")


@contextmanager
def _database() -> Iterator[Database]:
    """Open the configured database for one command and close its connections afterwards."""
    db = make_database(_settings().database_url)
    try:
        yield db
    finally:
        db.dispose()


def _engine(db: Database) -> Engine:
    """Return an engine for the command's writes (it fires no workflow, so it needs no definitions)."""
    return Engine(db, Registry(), SystemClock())


def _settings() -> Settings:
    return get_settings()


def _version(show: bool) -> None:
    if show:
        from api import __version__

        typer.echo(f"vuosikello {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Vuosikello: workflows and reminders for cooperation between Finnish public bodies."""


@db_app.command("current")
def db_current() -> None:
    """Print the migration the database is at and the newest one shipped (they differ: run `db upgrade`)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from api.schema import alembic_config

    settings = _settings()
    head = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_current_head()
    with _database() as db, db.engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    typer.echo(f"database: {current or 'empty (no migrations applied)'}")
    typer.echo(f"shipped:  {head}")
    if current != head:
        raise typer.Exit(code=1)


@db_app.command("revision")
def db_revision(message: Annotated[str, typer.Argument(help="what the migration does, a few words")]) -> None:
    """For developers: draft the next migration by comparing the models with a database upgraded to head.

    Point VUOSIKELLO_DATABASE_URL at a scratch database; the draft lands in api/migrations/versions/ to be read
    and edited by hand (ARCHITECTURE.md, "Writing a migration").
    """
    from alembic import command
    from alembic.script import ScriptDirectory

    from api.schema import alembic_config, metadata

    settings = _settings()
    config = alembic_config(settings.database_url)
    head = ScriptDirectory.from_config(config).get_current_head() or "0000"
    number = f"{int(head) + 1:04d}" if head.isdigit() else None
    command.upgrade(config, "head")
    metadata()
    script = command.revision(config, message, autogenerate=True, rev_id=number)
    path = getattr(script, "path", None) if script is not None and not isinstance(script, list) else None
    typer.echo(f"drafted {path or number}: review it before committing")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the database migrations."""
    from api.schema import upgrade

    settings = _settings()
    upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}: {settings.database_url.split('@')[-1]}")


@org_app.command("import")
def organisations_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Import (or re-import) organisations from a CSV; existing links are kept."""
    from engine.directory import import_organisations
    from engine.errors import InvalidInput

    with _database() as db:
        try:
            stats = _engine(db).run(lambda uow: import_organisations(uow.session, file, uow.now))
        except InvalidInput as exc:
            typer.echo(f"refused: {exc.detail}", err=True)
            raise typer.Exit(2) from None
    typer.echo(f"organisations: {stats}")


@wf_app.command("check")
def workflows_check(path: Annotated[Path | None, typer.Argument()] = None) -> None:
    """Validate definitions (a file or folder; default: the shipped ones)."""
    from engine.definition import WorkflowDefinition, load_definition, problems_at
    from engine.versions import runtime_problems
    from notifications.render import missing_templates
    from workflows.registry import build_registry

    def runs(d: WorkflowDefinition, source: str, text: str) -> None:
        assert registry is not None
        # what the editor and the API check too: the workflow's guards, and templates in every language
        guards = registry.guards.get(d.name) if d.name in registry.names() else None
        found = runtime_problems(d, guards=guards, templates=missing_templates)
        if found:
            raise problems_at(text, source, found)

    failed = False
    try:
        registry = build_registry()
    except DefinitionError as exc:
        registry, failed = None, True
        _echo_problems(exc)
    if path is None:  # the shipped definitions, each checked as its file
        from workflows.registry import PLUGINS
        files = sorted(f for plugin in PLUGINS for folder in plugin.definitions for f in folder.glob("*.yaml"))
        summary = True
    else:
        files = sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
        summary = False
    for f in files:
        try:
            d = load_definition(f)
            if registry is not None:
                runs(d, str(f), f.read_text(encoding="utf-8"))
        except DefinitionError as exc:
            failed = True
            _echo_problems(exc)
            continue
        typer.echo(f"ok  {d.name} v{d.version} ({len(d.states)} states, {len(d.transitions)} transitions)"
                   if summary else f"ok  {f}: {d.name} v{d.version}")
    if failed:
        raise typer.Exit(1)


def _echo_problems(exc: DefinitionError) -> None:
    """Print every problem of a refused definition, each with its line."""
    problems = exc.extra.get("problems")
    for line in problems if isinstance(problems, list) and problems else [exc.detail]:
        typer.echo(f"invalid  {line}", err=True)


def _audit_key(key_file: Path | None) -> bytes | None:
    """Return the checkpoint key from --key-file, else from the settings; exit 2 when it cannot be read."""
    from engine.anchor import AuditKeyError, audit_key

    settings = _settings()
    try:
        return audit_key(settings.model_copy(update={"audit_key_file": key_file}) if key_file else settings)
    except AuditKeyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[Path | None, typer.Option(help="A checkpoint exported earlier (`audit checkpoint`)")] = None,
    since: Annotated[bool, typer.Option(help="Re-hash only what came after the checkpoint (file or newest stored)")]
    = False,
    key_file: Annotated[Path | None, typer.Option(help="The checkpoint key (default: VUOSIKELLO_AUDIT_KEY_FILE)")]
    = None,
) -> None:
    """Verify the event log, the records beside it and its checkpoints; exit 1 on any problem.

    Without the key or a checkpoint only the hash chains and the records are checked: a recomputed chain, a
    truncated case or a deleted agreement is then not found (SECURITY.md).
    """
    import time

    from api.web.delegation import wire
    from engine.audit import Checkpoint, NoTrustedCheckpoint, verify_all
    from workflows.registry import build_registry

    cp = None
    if checkpoint is not None:
        try:
            cp = Checkpoint.from_json(checkpoint.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            typer.echo(f"error: --checkpoint {checkpoint}: {exc}", err=True)
            raise typer.Exit(2) from None
    key = _audit_key(key_file)
    registry = build_registry()
    wire(registry)
    started = time.perf_counter()
    with _database() as db, Session(db.engine) as session:
        try:
            report = verify_all(session, checks=registry.audit_checks, key=key, checkpoint=cp, since=since)
        except NoTrustedCheckpoint as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    for p in report.problems:
        typer.echo(f"TAMPERED  {p}", err=True)
    for note in report.notes:
        typer.echo(f"note: {note}")
    if report.anchor is None:
        typer.echo("note: no checkpoint (no key, no --checkpoint): a recomputed chain, a truncated case or a "
                   "deleted agreement cannot be found")
    typer.echo(f"checked {report.cases} cases, {report.events} events: {len(report.problems)} problems "
               f"({time.perf_counter() - started:.1f} s)")
    if report.problems:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(
    out: Annotated[Path | None, typer.Option(help="Write the checkpoint to this file (default: stdout)")] = None,
    reason: str = "manual",
    key_file: Annotated[Path | None, typer.Option(help="The checkpoint key (default: VUOSIKELLO_AUDIT_KEY_FILE)")]
    = None,
) -> None:
    """Take a checkpoint of the log now: signed and stored with the key, and exported to a file or stdout.

    Keep the exported file outside the database's reach; `audit verify --checkpoint FILE` then finds any later
    rewrite of what it covered, with or without the key.
    """
    from engine.anchor import build_checkpoint

    key = _audit_key(key_file)
    with _database() as db:
        cp = build_checkpoint(_engine(db), reason, key)
    text = cp.to_json()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"checkpoint #{cp.seq} of {cp.cases} cases, {cp.events} events (up to event "
                   f"{cp.last_event_id}) written to {out}", err=True)
    if key is None:
        typer.echo("note: no audit key: the checkpoint is unsigned and not stored; only the exported copy counts",
                   err=True)


@people_app.command("set-password")
def people_set_password(
        email: Annotated[str, typer.Argument(help="the coordinator's or administrator's email address")],
        password_stdin: Annotated[bool, typer.Option("--password-stdin",
                                                     help="read the password from standard input")] = False) -> None:
    """Set a coordinator's or administrator's password (argon2id); every session of theirs ends."""
    import sys

    from api.web.auth import person_by_email
    from api.web.passwords import change_password
    from engine.errors import InvalidInput

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    with _database() as db:
        def work(uow: UnitOfWork) -> int:
            person = person_by_email(uow.session, email)
            if person is None:
                raise InvalidInput("email", f"no active person with the address {email}")
            return change_password(uow.session, person.id or 0, password, uow.now)
        try:
            ended = _engine(db).run(work)
        except InvalidInput as exc:
            typer.echo(f"refused: {exc}", err=True)
            raise typer.Exit(code=2) from None
    typer.echo(f"password set for {email}; {ended} session(s) ended")


@seal_app.command("show")
def seal_show(pem: Annotated[bool, typer.Option(help="Print the certificate itself (PEM) too")] = False) -> None:
    """Print the configured seal certificate's subject and SHA-256 fingerprint (publish these for relying parties)."""
    from workflows.agreement.record import load_seal

    seal = load_seal(_settings())
    if seal is None:
        typer.echo("no seal configured (VUOSIKELLO_SEAL_KEY_FILE + VUOSIKELLO_SEAL_CERT_FILE, or "
                   "VUOSIKELLO_SEAL_PKCS12_FILE)", err=True)
        raise typer.Exit(1)
    typer.echo(f"subject: {seal.subject}\nsha256:  {seal.fingerprint_sha256}")
    if pem:
        typer.echo(seal.cert_pem.decode("ascii"), nl=False)


@seal_app.command("self-signed")
def seal_self_signed(key: Path, cert: Path,
                     name: Annotated[str, typer.Option(help="The certificate's common name")] = "Vuosikello seal",
                     days: int = 3650) -> None:
    """Write a new key and a self-signed certificate for it (a test or an internal deployment; not the demo's)."""
    from workflows.agreement.record import generate_self_signed

    generate_self_signed(key, cert, common_name=name, days=days)
    typer.echo(f"wrote {key} (keep it private) and {cert}")


@app.command("admin-token")
def admin_token(email: str = "admin@vuosikello.local", name: str = "Administrator") -> None:
    """Create an administrator (if needed) and print a new API token for it."""
    from engine.directory import ensure_admin, issue_token

    def issue(uow: UnitOfWork) -> str:
        person = ensure_admin(uow.session, None, uow.now, email=email, name=name)
        return issue_token(uow.session, person.id or 0, uow.now, "cli")

    with _database() as db:
        token = _engine(db).run(issue)
    typer.echo(token)


@app.command("serve")
def serve(demo: Annotated[bool, typer.Option(help="Load the register and a demo agreement")] = False,
          host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the service (migrating the database first)."""
    import uvicorn

    from api.app import create_app
    from api.context import build_context
    from api.schema import upgrade

    settings = _settings()
    base = f"http://{host}:{port}"
    if demo and settings.base_url == Settings.model_fields["base_url"].default:
        settings.base_url = base  # links in the demo's emails point at this server
    if demo:
        from api.demo import ensure_demo_seal

        ensure_demo_seal(settings)  # a self-signed seal for the sealed records, unless one is configured
    upgrade(settings.database_url)
    ctx = build_context(settings)
    if demo:
        from api.demo import banner, load_demo, sign_in_links

        info = sign_in_links(ctx, load_demo(ctx, settings.admin_token), settings.base_url)
        settings.admin_token = info.admin_token
        for line in banner(info, base):
            typer.echo(line)
    # proxy_headers off: uvicorn would otherwise take X-Forwarded-For from any peer on 127.0.0.1, and a client on
    # the same host could pick its address for the sign-in limiter; api/web/auth.client_address trusts only the
    # configured VUOSIKELLO_TRUSTED_PROXIES
    uvicorn.run(create_app(ctx=ctx), host=host, port=port, log_level="info", proxy_headers=False,
                log_config=uvicorn_log_config(settings.log_format))


@app.command("worker")
def worker() -> None:
    """Run the timer and mail sweeps without the web server (then serve with VUOSIKELLO_SCHEDULER_ENABLED=false).

    On PostgreSQL any number of workers may run: one leads at a time, another takes over within 30 s when it
    dies. On SQLite one process per database file sweeps; a second is refused (exit 3). SIGTERM stops cleanly.
    """
    import logging
    import signal
    import threading

    from api.context import build_context
    from api.schema import upgrade
    from engine.scheduler import SchedulerLocked

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = _settings()
    upgrade(settings.database_url)
    ctx = build_context(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        scheduler = ctx.start_scheduler()
    except SchedulerLocked as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(3) from None
    typer.echo(f"worker sweeping every {settings.scheduler_interval_seconds:g} s: "
               f"{settings.database_url.split('@')[-1]}", err=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        scheduler.shutdown()
        ctx.db.dispose()


def main() -> None:
    """Run the CLI."""
    app()


if __name__ == "__main__":
    main()
