"""The `planpulse` command line: parses arguments, calls the core, maps errors to exit statuses.

Exit status 0 is success, 2 bad input or missing configuration (one sentence on stderr, no
traceback), 1 anything else (logged with its traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from bot.entry.logging_setup import configured_logging
from bot.errors import UserError

log = logging.getLogger("planpulse")


def _db_upgrade(args: argparse.Namespace) -> int:
    from bot.settings import load_settings
    from storage.db import current_revision, head_revision, make_engine, upgrade

    engine = make_engine(load_settings().database_url)
    before = current_revision(engine)
    upgrade(engine)
    print(f"Database schema: {before or 'empty'} -> {head_revision()}")
    return 0


def _aware_instant(text: str) -> datetime:
    """An ISO 8601 instant with its offset (`Z` allowed): a naive time would be ambiguous."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant: {text!r}") from exc
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give the UTC offset (e.g. Z or +00:00): {text!r}")
    return value.astimezone(UTC)


def _lazy(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    """Import a command's module only when it runs: `planpulse validate` needs no Slack stack."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        return int(getattr(importlib.import_module(module), function)(args))

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="planpulse", description=__doc__.splitlines()[0])
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log debug output (whatever LOG_LEVEL says)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve", help="run the bot (HTTP mode, or Socket Mode with SLACK_APP_TOKEN)"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=None,
        help="HTTP port, only /healthz in Socket Mode (default PORT or 3000)",
    )
    serve.add_argument("--host", default="0.0.0.0", help="HTTP bind address")  # noqa: S104
    serve.add_argument("--no-scheduler", action="store_true", help="do not run the in-process tick")
    serve.set_defaults(handler=_lazy("bot.entry.server", "serve_command"))

    tick = sub.add_parser("tick", help="run everything that is due now, once, then exit")
    tick.add_argument(
        "--now",
        type=_aware_instant,
        default=None,
        metavar="ISO-8601",
        help="run as if it were this instant (with its UTC offset), to catch up or replay one tick",
    )
    tick.set_defaults(handler=_lazy("scheduler.tick", "tick_command"))

    check = sub.add_parser(
        "check", help="verify the crash-safety invariants: the database against Slack"
    )
    check.add_argument(
        "--settled",
        action="store_true",
        help="no tick is running: every claim must have run to its end",
    )
    check.set_defaults(handler=_lazy("bot.invariants", "check_command"))

    for name, help_text in (
        ("import", "validate a plan and apply it in one transaction"),
        ("validate", "check a plan file and report every problem"),
    ):
        command = sub.add_parser(name, help=help_text)
        command.add_argument(
            "path", help="a .yaml file, an .xlsx workbook or a folder of .csv files"
        )
        if name == "import":
            command.add_argument("--dry-run", action="store_true", help="report, write nothing")
        command.set_defaults(handler=_lazy("bot.planfile.commands", f"{name}_command"))

    export = sub.add_parser("export", help="write the plan as YAML, a workbook or CSV files")
    export.add_argument("--format", choices=("yaml", "xlsx", "csv"), default="yaml")
    export.add_argument(
        "--output", help="file (yaml, xlsx) or folder (csv); YAML to stdout if absent"
    )
    export.set_defaults(handler=_lazy("bot.planfile.commands", "export_command"))

    manifest = sub.add_parser("manifest", help="print the Slack app manifest (YAML)")
    mode = manifest.add_mutually_exclusive_group()
    mode.add_argument("--request-url", help="public URL of POST /slack/events (HTTP mode)")
    mode.add_argument("--socket-mode", action="store_true", help="Socket Mode, no public URL")
    manifest.set_defaults(handler=_lazy("bot.entry.manifest", "manifest_command"))

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", help="migrate the schema to this version").set_defaults(
        handler=_db_upgrade
    )

    demo = sub.add_parser("demo", help="run the example plan against the built-in Slack stand-in")
    demo.add_argument("--database", default="sqlite:///planpulse-demo.db", help="demo database URL")
    demo.add_argument(
        "--scenario",
        default=None,
        help="what the scripted people do (YAML; default: the example's, next to the plan)",
    )
    demo.add_argument(
        "--report", default="demo-report", help="directory for the HTML report (index.html)"
    )
    demo.set_defaults(handler=_lazy("bot.entry.demo", "demo_command"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except UserError as exc:
        from templates.problems import say_all

        text = say_all(exc.problems, "cli") if exc.problems else exc.message
        print(f"planpulse: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    from bot.settings import load_logging_settings

    chosen = load_logging_settings()
    level = "DEBUG" if args.verbose else chosen.log_level
    with configured_logging(level=level, fmt=chosen.log_format):
        try:
            return int(args.handler(args))
        except (UserError, KeyboardInterrupt):
            raise
        except Exception:
            log.exception("planpulse %s failed", args.command)
            return 1


if __name__ == "__main__":
    sys.exit(main())
