"""`python -m standin --port N --workspace file.yaml`: run the Slack stand-in until interrupted."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from standin.server import StandIn
from standin.workspace import Workspace


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m standin", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3999)
    parser.add_argument("--workspace", help="YAML workspace file (default: the built-in one)")
    args = parser.parse_args(argv)
    try:
        workspace = Workspace.from_yaml(args.workspace) if args.workspace else Workspace.default()
    except (OSError, ValueError, TypeError) as exc:
        print(f"standin: cannot load the workspace: {exc}", file=sys.stderr)
        return 2
    standin = StandIn(workspace, host=args.host, port=args.port).start()
    print(f"Slack stand-in on {standin.api_url} (bot token {workspace.bot_token})", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
