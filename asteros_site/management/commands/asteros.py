"""``python manage.py asteros <serve|demo|run|resolve|ensure-admin|routes>``: the product's own commands.

Each subcommand parses its arguments and calls one service; see README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cosmos.services.errors import ServiceError


def port_number(raw: str) -> int:
    """A TCP port for ``--port``: argparse turns the ValueError into its one usage line."""
    try:
        port = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number; use an integer from 1 to 65535") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{raw!r} is out of range; use an integer from 1 to 65535")
    return port


class Command(BaseCommand):
    help = (
        "AsterOS: serve, load the demo, run an agent, star or workflow from the terminal, ensure an admin user, "
        "list the routes."
    )

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        serve = sub.add_parser("serve", help="Serve ASGI (HTTP + websockets); in embedded mode also the worker.")
        serve.add_argument("--host", default="127.0.0.1")
        serve.add_argument("--port", type=port_number, default=settings.ASTEROS.port)
        serve.add_argument("--server", choices=("daphne", "uvicorn"), default="daphne")
        serve.add_argument(
            "--no-static", action="store_true", help="Do not serve /static/ (a proxy serves collectstatic's output)."
        )
        demo = sub.add_parser(
            "demo",
            help="Create the demo agents, star, workflow and MCP server that are missing; rows that exist, "
            "edited or not, are kept.",
        )
        demo.add_argument(
            "--reset", action="store_true", help="Restore every demo row to its original definition (edits are lost)."
        )
        run = sub.add_parser(
            "run",
            help="Run an agent, star or workflow and stream it here, each child run (a member, a step) "
            "under its own label.",
        )
        run.add_argument(
            "target",
            help="agent-id, agent:<id>, star:<id>, workflow:<id>, or an id that only one kind has.",
        )
        run.add_argument("message", help="The input: what to ask or do.")
        run.add_argument("--session", default=None, help="Continue (or start) this conversation.")
        resolve = sub.add_parser(
            "resolve",
            help="Decide on a run's interrupt (approve, reject [why], edit '{json}', answer <text or JSON>), "
            "then follow the run.",
        )
        resolve.add_argument("interrupt")
        resolve.add_argument("reply", nargs="+")
        admin = sub.add_parser("ensure-admin", help="Create the admin user once (ASTEROS_ADMIN_PASSWORD or generated).")
        admin.add_argument("--username", default=os.environ.get("ASTEROS_ADMIN_USER", "admin"))
        sub.add_parser(
            "routes", help="Every route of every door (HTTP and websocket): methods, path, name, view; in match order."
        )

    def handle(self, *args, action: str, **options) -> None:
        handler = getattr(self, "handle_" + action.replace("-", "_"))
        try:
            handler(**options)
        except ServiceError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None

    def handle_serve(self, host: str, port: int, server: str, no_static: bool, **_options) -> None:
        from channels.routing import get_default_application

        from asteros_site.serving import CannotListen, StaticFilesHandler, announce, listening_socket, start_serving

        application = get_default_application()  # settings.ASGI_APPLICATION (it refuses an unset SECRET_KEY)
        try:
            sock = listening_socket(host, port)  # first: a taken port stops us before anything starts
        except CannotListen as exc:
            raise CommandError(str(exc)) from None
        start_serving()
        if not no_static:
            # Only /static/ requests are intercepted: the admin and dashboard are styled
            # without a proxy. Behind a proxy, use --no-static and collectstatic.
            application = StaticFilesHandler(application)
        if server == "uvicorn":
            import uvicorn

            from asteros_site.uvicorn_server import http_protocol

            # loop "auto": uvloop where it is installed (requirements.txt), else asyncio's.
            config = uvicorn.Config(application, log_level="warning", lifespan="off", http=http_protocol(), loop="auto")
            announce(host, port, self.stdout)  # uvicorn serves on the socket that listens already
            uvicorn.Server(config).run(sockets=[sock])
            return
        from daphne.endpoints import build_endpoint_description_strings

        from asteros_site.daphne_server import ListeningServer

        sock.close()  # Daphne binds the address itself, now free
        daphne = ListeningServer(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            verbosity=0,
            on_listening=lambda: announce(host, port, self.stdout),
        )
        daphne.run()
        if daphne.failure:
            self.stderr.write(f"CommandError: cannot listen on {host}:{port}: {daphne.failure}")
            self.stderr.flush()
            os._exit(1)  # the embedded worker's threads would keep a normal exit waiting

    def handle_demo(self, reset: bool, **_options) -> None:
        from asteros_site.demo import load_demo

        summary = load_demo(reset=reset)
        created = ", ".join(summary["created"]) or "nothing"
        if reset:
            line = f"demo reset: restored {summary['restored']} rows, created {created}"
        else:
            line = f"demo: created {created}; kept {summary['kept']} rows as they are (--reset restores them)"
        self.stdout.write(self.style.SUCCESS(f"{line}; model: {summary['provider']}"))

    def handle_ensure_admin(self, username: str, **_options) -> None:
        from asteros_site.demo import ensure_admin

        created, password = ensure_admin(username, os.environ.get("ASTEROS_ADMIN_PASSWORD"))
        if not created:
            self.stdout.write(f"admin user {username!r} exists")
        elif password:
            self.stdout.write(
                self.style.WARNING(f"admin user {username!r} created with password: {password}  (shown once)")
            )
        else:
            self.stdout.write(f"admin user {username!r} created with ASTEROS_ADMIN_PASSWORD")

    def handle_routes(self, **_options) -> None:
        from asteros_site.route_table import all_routes

        for route in all_routes():
            self.stdout.write(route.line())

    def handle_resolve(self, interrupt: str, reply: list[str], **_options) -> None:
        from cosmos.cli import resolve_and_follow

        self._exit_with(lambda: resolve_and_follow(interrupt, " ".join(reply), out=self.stdout._out))

    def handle_run(self, target: str, message: str, session: str | None, **_options) -> None:
        from cosmos.cli import stream_run

        self._exit_with(lambda: stream_run(target, message, session_id=session, out=self.stdout._out))

    def _exit_with(self, follow: Callable[[], Coroutine[Any, Any, int]]) -> None:
        """Run a following coroutine (``cosmos.cli``) and exit with its code."""
        try:
            code = asyncio.run(follow())
        except KeyboardInterrupt:
            code = 130
        if code == 130:
            # Interrupted: leave now. Exiting normally would join the embedded worker's threads,
            # which may still hold the run; it is flagged, so the reaper ends it cancelled.
            sys.stdout.flush()
            os._exit(130)
        if code:
            sys.exit(code)
