"""Run as a script: one more API process (as another Serve replica is) over a running engine's coordinator.

`python -m tests.integration.api_process SETTINGS_PICKLE RAY_ADDRESS PORT`: joins the Ray cluster, finds the
named coordinator, serves create_app with uvicorn on 127.0.0.1:PORT until killed. Its own store connections,
its own in-process state (the login limiter's counts among them), as a replica on another process has."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import ray
import uvicorn

from tork_ray.api.app import create_app
from tork_ray.coordinator.actor import get_coordinator


def main(settings_path: str, address: str, port: int) -> None:
    settings = pickle.loads(Path(settings_path).read_bytes())  # written by the test, 0600
    ray.init(address=address, namespace=settings.ray.namespace, log_to_driver=False, configure_logging=False)
    app = create_app(settings, get_coordinator(settings))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
