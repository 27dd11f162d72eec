"""CORS (middleware.web.cors.*): Starlette's middleware, configured from the settings."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from tork_ray.settings import CorsSettings


def add_cors(app: FastAPI, cors: CorsSettings) -> None:
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(cors.origins),
        allow_methods=list(cors.methods),
        allow_headers=list(cors.headers),
        allow_credentials=cors.credentials,
    )
