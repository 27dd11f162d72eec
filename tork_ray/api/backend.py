"""What the API talks to: the store for reads, the coordinator actor for every write."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from tork_ray.api.offload import Offload
from tork_ray.domain.redact import Redactor
from tork_ray.settings import Settings
from tork_ray.store.store import Store


@dataclass
class Backend:
    settings: Settings
    store: Store
    coordinator: Any  # a Ray ActorHandle of tork_ray.coordinator.actor.Coordinator
    redactor: Redactor
    # Every store call and every heavy computation of a request runs here, off the event loop.
    offload: Offload = field(default_factory=Offload)


async def backend(request: Request) -> Backend:
    # async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request.
    return request.app.state.backend
