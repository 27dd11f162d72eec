"""The tork-ray command: run the engine, check its health, submit a job file."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from tork_ray.client import Client
from tork_ray.errors import TorkError
from tork_ray.settings import load_settings


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from tork_ray.worker.interrupts import restore_sigint

    # Either mode starts Ray processes (and the API's): none may inherit an ignored SIGINT from our launcher.
    if restore_sigint():
        logging.getLogger("tork_ray").info("SIGINT was ignored by the launcher: handling restored")
    settings = load_settings()
    if args.mode == "standalone":
        from tork_ray.standalone import serve

        serve(settings)
    else:
        from tork_ray.cluster import run_coordinator

        run_coordinator(settings, with_serve=not args.uvicorn)
    return 0


def _resources(args: argparse.Namespace) -> int:
    from tork_ray.cluster import queue_resources

    print(queue_resources(load_settings(), head=args.head))
    return 0


def _client(args: argparse.Namespace) -> Client:
    """Options first, then TORK_USERNAME / TORK_PASSWORD / TORK_TOKEN (tork_ray.client.credentials)."""
    return Client(args.endpoint, username=args.user, password=args.password, token=args.token)


def _health(args: argparse.Namespace) -> int:
    answer = _client(args).health()
    print(json.dumps(answer.to_json()))
    return 0 if answer.up else 1


def _submit(args: argparse.Namespace) -> int:
    path = Path(args.file)
    job = _client(args).submit(path)
    print(json.dumps(job.to_json(), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tork-ray", description="Tork's workflow engine, on Ray.")
    parser.add_argument("--endpoint", default="http://localhost:8000", help="API address for client commands")
    parser.add_argument("--user", help="basic auth username (default: $TORK_USERNAME)")
    parser.add_argument("--password", help="basic auth password (default: $TORK_PASSWORD; prefer the variable)")
    parser.add_argument("--token", help="the API key, sent as a Bearer token (default: $TORK_TOKEN)")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the engine in the foreground")
    run.add_argument(
        "mode",
        nargs="?",
        default="standalone",
        choices=["standalone", "coordinator"],
        help="standalone: local Ray + coordinator + API (default); coordinator: join a Ray cluster (ray.address, "
        "default auto), start the coordinator actor and deploy the API on Ray Serve",
    )
    run.add_argument("--uvicorn", action="store_true", help="coordinator mode: serve the API here, not on Serve")
    run.set_defaults(handler=_run)
    resources = commands.add_parser(
        "resources", help="print the `ray start --resources` JSON for this node's queues (TORK_WORKER_QUEUES_*)"
    )
    resources.add_argument(
        "--head", action="store_true", help="for the head node: add the resource the coordinator and API run on"
    )
    resources.set_defaults(handler=_resources)
    commands.add_parser("health", help="check a running engine").set_defaults(handler=_health)
    submit = commands.add_parser("submit", help="submit a job file (YAML or JSON)")
    submit.add_argument("file")
    submit.set_defaults(handler=_submit)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except TorkError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
