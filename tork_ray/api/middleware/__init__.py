"""Web middleware (SPEC §6.2): one module per concern, assembled here from middleware.web.* settings."""

from __future__ import annotations

from fastapi import FastAPI

from tork_ray.api.authn import Authenticator
from tork_ray.api.middleware.auth import Authenticate
from tork_ray.api.middleware.bodylimit import BodyLimit
from tork_ray.api.middleware.cors import add_cors
from tork_ray.api.middleware.ratelimit import RateLimit
from tork_ray.api.middleware.requestlog import RequestLog
from tork_ray.api.middleware.unexpected import Unexpected
from tork_ray.settings import ApiSettings
from tork_ray.spec.units import parse_memory


def install_middleware(app: FastAPI, api: ApiSettings, authenticator: Authenticator | None = None) -> None:
    """Outermost first: the request log (sees every answer, 413s and 429s too), CORS (its headers go on
    refusals as well), the rate limit (refuses before a body is read), authentication (with basic or key auth
    on), the body limit, then the catch-all for unexpected errors (innermost, so that it sees what the routes
    raise and no other layer has handled)."""
    app.add_middleware(Unexpected)
    app.add_middleware(BodyLimit, max_bytes=parse_memory(api.body_limit), limit_text=api.body_limit)
    if authenticator is not None:
        app.add_middleware(Authenticate, authenticator=authenticator)
    if api.rate_limit.enabled:
        app.add_middleware(RateLimit, rps=api.rate_limit.rps)
    if api.cors.enabled:
        add_cors(app, api.cors)
    if api.request_log.enabled:
        app.add_middleware(RequestLog, level=api.request_log.level, skip=api.request_log.skip)
