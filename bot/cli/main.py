"""The ``craftlink`` command: serve, db upgrade, roster import, demo seed, match, channels check, ...

Every failure a user can cause ends in one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from bot.cli import channels, match, report, staff
from bot.config import ConfigError, Settings, load_settings
from handlers.clock import TEST_CLOCK_ENV, FileClock


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


async def _upgrade(settings: Settings) -> str | None:
    from storage.db import create_engine
    from storage.migrate import current_revision, upgrade

    engine = create_engine(settings.database.url)
    try:
        await upgrade(engine)
        return await current_revision(engine)
    finally:
        await engine.dispose()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = _settings(args)
    revision = asyncio.run(_upgrade(settings))
    print(f"database at revision {revision} ({settings.database.url.split('@')[-1]})")
    return 0


SCHEMA_CHECK_TIMEOUT_S = 10.0


async def _schema_problem(settings: Settings) -> str | None:
    """What keeps ``serve`` from starting on this database's schema, in a few words; None if it is at head."""
    from storage.db import create_engine
    from storage.migrate import current_revision, head_revision, is_known_revision

    engine = create_engine(settings.database.url)
    try:
        async with asyncio.timeout(SCHEMA_CHECK_TIMEOUT_S):
            current = await current_revision(engine)
    finally:
        await engine.dispose()
    head = head_revision()
    if current == head:
        return None
    if current is None:
        return "the database has never been migrated"
    if not is_known_revision(current):
        return f"the database is at revision {current}, which this craftlink does not know (a newer version's?)"
    return f"the database is at revision {current}, this craftlink needs {head}"


def _check_schema(args: argparse.Namespace, settings: Settings) -> str | None:
    """One line for stderr if the schema is not current (or cannot be read); None to go on serving.

    Checked before anything starts: on a database never migrated every subsystem failed on its own,
    ~80 KB of tracebacks in 8 s, and the process stayed up answering errors.
    """
    try:
        problem = asyncio.run(_schema_problem(settings))
    except Exception as exc:  # unreachable, wrong password, not a database file...
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        return f"error: cannot read the database's schema version ({type(exc).__name__}: {reason})"
    if problem is None:
        return None
    upgrade = "craftlink" + (f" --config {args.config}" if args.config else "") + " db upgrade"
    return f"error: {problem}; run `{upgrade}` first"


def _check_playground_database(settings: Settings) -> str | None:
    """One line for stderr if the playground would serve a database with real-channel people.

    The settings already refuse the playground next to a real channel; this catches the demo config
    pointed at a production database, where anyone could then act as any of its web-chat people.
    """
    from handlers.settings import demo_mode

    if not demo_mode(settings):
        return None

    async def real_people() -> dict[str, int]:
        from sqlalchemy import func, select

        from storage.db import create_engine, session_factory
        from storage.models import Identity

        engine = create_engine(settings.database.url)
        try:
            async with session_factory(engine)() as db:
                rows = await db.execute(select(Identity.channel, func.count()).where(Identity.channel != "web")
                                        .group_by(Identity.channel))
                return {str(channel): int(n) for channel, n in rows.all()}
        finally:
            await engine.dispose()

    found = asyncio.run(real_people())
    if not found:
        return None
    listing = ", ".join(f"{channel}: {n}" for channel, n in sorted(found.items()))
    return (f"error: server.playground: refused on a database with real-channel people ({listing}); use a demo "
            "database, or set server.playground_with_real_channels = true")


async def _freeze_heap(app: object) -> None:
    """Once started, move everything alive (the imported libraries, the app) out of the cyclic GC's
    view: its collections under load then scan only what requests create (docs/ARCHITECTURE.md)."""
    import gc

    gc.freeze()


def _test_clock() -> FileClock | None:
    """A FileClock when ``CRAFTLINK_TEST_CLOCK_FILE`` is set (fault tests only), else None (the system clock)."""
    import os

    path = os.environ.get(TEST_CLOCK_ENV)
    if not path:
        return None
    logging.getLogger(__name__).warning("%s is set: time comes from %s (tests only)", TEST_CLOCK_ENV, path)
    return FileClock(path)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.role:
        settings.server.role = args.role
    if problem := _check_schema(args, settings):  # before importing the app, which takes seconds
        print(problem, file=sys.stderr)
        return 1
    if problem := _check_playground_database(settings):
        print(problem, file=sys.stderr)
        return 1
    from aiohttp import web

    from bot.app import create_app
    from bot.ops.logs import setup_logging

    setup_logging(settings)
    app = create_app(settings, clock=_test_clock())
    app.on_startup.append(_freeze_heap)
    host, port = args.host or settings.server.host, args.port or settings.server.port
    base = f"http://{host}:{port}"
    print(f"craftlink serving on {base}  (staff console: {base}/console/)", flush=True)
    if settings.server.playground:
        print(f"web chat playground: {base}/playground  — Ctrl-C stops", flush=True)
    web.run_app(app, host=host, port=port, print=None, access_log=None)
    return 0


async def _with_session(settings: Settings, work: Callable[..., object]) -> object:
    from storage.db import create_engine, session_factory

    engine = create_engine(settings.database.url)
    try:
        async with session_factory(engine)() as session, session.begin():
            return await work(session)  # type: ignore[misc]
    finally:
        await engine.dispose()


def cmd_roster_import(args: argparse.Namespace) -> int:
    from bot.channels.registry import roster_channels
    from handlers.clock import SystemClock
    from handlers.roster import RosterFileError, parse_roster
    from handlers.roster_import import ImportReport, import_roster

    settings = _settings(args)
    try:
        parsed = parse_roster(Path(args.file), channels=roster_channels())
    except RosterFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def work(session: object) -> ImportReport:
        return await import_roster(session, parsed, now=SystemClock().now(), apply=not args.dry_run)  # type: ignore[arg-type]

    report = asyncio.run(_with_session(settings, work))
    assert isinstance(report, ImportReport)
    for err in report.errors:
        print(f"第 {err.line} 行：{err.reason}", file=sys.stderr)
    print(("（预览，未写入）" if args.dry_run else "") + report.summary())
    return 1 if report.errors and not report.changes else 0


def cmd_demo_seed(args: argparse.Namespace) -> int:
    from bot.demo import seed
    from handlers.clock import SystemClock

    settings = _settings(args)

    async def work(session: object) -> object:
        return await seed(session, SystemClock().now())  # type: ignore[arg-type]

    report = asyncio.run(_with_session(settings, work))
    from bot.demo import DEMO_PASSWORD, STAFF

    print(f"demo data ready: {report.summary()}")  # type: ignore[attr-defined]
    logins = "、".join(f"{login}（{name}）" for name, _, _, login in STAFF)
    print(f"console logins: {logins}, password {DEMO_PASSWORD}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="craftlink", description="劳模工匠服务队 chat bot")
    parser.add_argument("--config", "-c", default=None, help="config file (TOML); default: built-in defaults + env")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--role", choices=("all", "intake", "worker"), default=None,
                       help="run only part of the service (overrides server.role)")
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations (Alembic) up to the newest").set_defaults(func=cmd_db_upgrade)

    roster = sub.add_parser("roster", help="craftsman roster (花名册)")
    roster_sub = roster.add_subparsers(dest="roster_command", required=True)
    imp = roster_sub.add_parser("import", help="import a CSV or XLSX roster (upsert by 编号)")
    imp.add_argument("file")
    imp.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
    imp.set_defaults(func=cmd_roster_import)

    demo = sub.add_parser("demo", help="demo data")
    demo_sub = demo.add_subparsers(dest="demo_command", required=True)
    demo_sub.add_parser("seed", help="create fictional craftsmen, enterprises and staff").set_defaults(func=cmd_demo_seed)

    for module in (match, channels, staff, report):  # explicit: a broken subcommand fails loudly
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"error: {exc.strerror or exc} ({getattr(exc, 'filename', '') or ''})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
