"""The API address the engine tells Ray programs (tork_ray.submit() without a URL asks the coordinator for it)."""

from __future__ import annotations

import ray

from tork_ray.settings import Settings

# Addresses that mean "every interface": a client needs the node's own address instead.
_ANY_HOST = frozenset({"", "0.0.0.0", "::"})


def api_address(settings: Settings) -> str:
    """http://host:port of the API. Both modes serve it on the head, where the coordinator runs: uvicorn in the
    standalone process, Serve's one HTTP proxy (HeadOnly) in cluster mode; so a wildcard host becomes the IP of
    the coordinator's node."""
    host = settings.api.host
    if host in _ANY_HOST:
        host = ray.util.get_node_ip_address()
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"http://{host}:{settings.api.port}"
