"""The API as a Ray Serve deployment (cluster mode): each replica builds the app against the named coordinator."""

# Standalone mode serves the very same create_app() with uvicorn instead (tork_ray/standalone.py).

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from ray import serve

from tork_ray.api.app import create_app
from tork_ray.api.authn import with_key
from tork_ray.coordinator.actor import get_coordinator
from tork_ray.placement import check_head, on_head
from tork_ray.settings import Settings

APP_NAME = "tork_ray_api"


# num_cpus=0: on a busy node a replica that asks for a CPU may never be placed (measured: see ARCHITECTURE.md).
# on_head(): replicas run (and are restarted) on the head only, next to the coordinator (tork_ray/placement.py).
@serve.deployment(ray_actor_options={"num_cpus": 0, "resources": on_head()}, num_replicas=1)
@serve.ingress()
class TorkApi:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(self._settings, get_coordinator(self._settings))


def deploy(settings: Settings, host: str | None = None, port: int | None = None, replicas: int = 1) -> Any:
    """Starts Serve's HTTP proxy on host:port (default: the settings' API address) and deploys the API there.
    Needs a connected Ray (`ray.init(address=...)`) whose cluster runs the coordinator actor."""
    check_head()
    # HeadOnly (Serve's default, said here on purpose): the one HTTP proxy is on the head, where the API is.
    serve.start(
        http_options={"host": host or settings.api.host, "port": port or settings.api.port, "location": "HeadOnly"}
    )
    deployment = TorkApi.options(num_replicas=replicas)  # type: ignore[attr-defined]  # a Deployment
    # The API key is settled here, once: every replica gets the same one (an empty key would be drawn per replica).
    application = deployment.bind(with_key(settings))
    return serve.run(application, name=APP_NAME, route_prefix="/")


def undeploy() -> None:
    serve.delete(APP_NAME)
