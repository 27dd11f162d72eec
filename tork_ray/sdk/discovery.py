"""Where the API is: a URL given, else $TORK_ENDPOINT, else (in a Ray program connected to the engine's
cluster) the address the engine's coordinator actor tells, else http://localhost:8000."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from tork_ray.errors import TorkError, Unavailable

ENV_ENDPOINT = "TORK_ENDPOINT"
ENV_NAMESPACE = "TORK_RAY_NAMESPACE"
DEFAULT_URL = "http://localhost:8000"
ASK_TIMEOUT_SECONDS = 30.0
# RaySettings.coordinator_name's default, said again here so a client does not import the engine's settings
# (and the store's SQLAlchemy with them); tests/unit/test_sdk_parts.py keeps the two equal.
COORDINATOR_NAME = "tork-coordinator"


def resolve_url(url: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if url:
        return url
    if env.get(ENV_ENDPOINT):
        return env[ENV_ENDPOINT]
    return url_from_ray(env) or DEFAULT_URL


def url_from_ray(environ: Mapping[str, str]) -> str | None:
    """The API address published by the engine on the Ray cluster this process is connected to (ray.init(
    address=...) or ray://...); None when this process is not connected to Ray. Ray is never imported here: a
    program that has not imported it is no Ray program, and a client machine need not have Ray at all."""
    ray: Any = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    name = COORDINATOR_NAME
    namespaces = sorted(
        entry["namespace"] for entry in ray.util.list_named_actors(all_namespaces=True) if entry["name"] == name
    )
    if not namespaces:
        raise Unavailable(
            f"no tork_ray engine on this Ray cluster (no actor named {name!r} in any namespace): "
            f"pass url= or set {ENV_ENDPOINT}"
        )
    preferred = [ray.get_runtime_context().namespace, environ.get(ENV_NAMESPACE)]
    chosen = next(([ns] for ns in preferred if ns in namespaces), namespaces)
    urls = {
        ray.get(ray.get_actor(name, namespace=ns).api_address.remote(), timeout=ASK_TIMEOUT_SECONDS) for ns in chosen
    }
    if len(urls) > 1:
        raise TorkError(
            f"several tork_ray engines on this Ray cluster (namespaces {', '.join(chosen)}): connect with "
            f"ray.init(namespace=...), set {ENV_NAMESPACE}, or pass url="
        )
    return urls.pop()
