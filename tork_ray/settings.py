"""One typed settings tree, read once from a TOML file and TORK_* environment variables (SPEC §7)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tork_ray.errors import BadRequest

CONFIG_CANDIDATES = ("config.local.toml", "config.toml", "~/tork/config.toml", "/etc/tork/config.toml")


@dataclass(frozen=True)
class DatastoreSettings:
    type: str = "sqlite"  # sqlite | postgres
    sqlite_path: str = ""  # "" → <data dir>/tork.db
    postgres_dsn: str = "postgresql+psycopg://tork:tork@localhost:5432/tork"
    retention_logs: str = "168h"
    retention_jobs: str = "8760h"
    # How often the coordinator deletes expired jobs (autoDelete, retention) and old log parts.
    cleanup_interval: str = "1m"

    def url(self, data_dir: Path) -> str:
        if self.type == "postgres":
            return self.postgres_dsn
        return f"sqlite:///{self.sqlite_path or data_dir / 'tork.db'}"


@dataclass(frozen=True)
class RaySettings:
    address: str = ""  # "" → start a local Ray (standalone); "auto" or host:port → join a cluster
    namespace: str = "tork_ray"
    num_cpus: int | None = None
    coordinator_name: str = "tork-coordinator"


@dataclass(frozen=True)
class RuntimeSettings:
    type: str = "docker"  # docker | shell | podman
    docker_privileged: bool = False
    shell_cmd: tuple[str, ...] = ("bash", "-c")


@dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    body_limit: str = "500K"
    redact_enabled: bool = True
    redact_patterns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path.home() / ".tork_ray")
    queues: Mapping[str, int] = field(default_factory=lambda: {"default": os.cpu_count() or 1})
    datastore: DatastoreSettings = field(default_factory=DatastoreSettings)
    ray: RaySettings = field(default_factory=RaySettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    api: ApiSettings = field(default_factory=ApiSettings)

    @property
    def store_url(self) -> str:
        return self.datastore.url(self.data_dir)


def load_settings(environ: Mapping[str, str] | None = None, config_file: str | None = None) -> Settings:
    """Builds the settings from (in order) defaults, the TOML file, then TORK_* variables."""
    env = os.environ if environ is None else environ
    tree = _read_toml(config_file or env.get("TORK_CONFIG"), explicit=bool(config_file or env.get("TORK_CONFIG")))
    for key, value in env.items():
        if key.startswith("TORK_") and key != "TORK_CONFIG":
            _put(tree, key[len("TORK_") :].lower().split("_"), value)
    return _build(tree)


def _read_toml(path: str | None, *, explicit: bool) -> dict[str, Any]:
    candidates = [path] if path else list(CONFIG_CANDIDATES)
    for candidate in candidates:
        resolved = Path(os.path.expanduser(candidate))
        if resolved.is_file():
            with resolved.open("rb") as handle:
                return tomllib.load(handle)
    if explicit:
        raise BadRequest(f"config file {path} does not exist")
    return {}


def _put(tree: dict[str, Any], parts: list[str], value: str) -> None:
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return
    node[parts[-1]] = value


def _get(tree: Mapping[str, Any], dotted: str, default: Any) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def _as_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


def _as_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(str(part) for part in value)


def _as_int(dotted: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"setting {dotted} must be an integer, got {value!r}") from None


def _build(tree: Mapping[str, Any]) -> Settings:
    base = Settings()
    queues = _get(tree, "worker.queues", None)
    # Env names split on "_", so TORK_RAY_NUM_CPUS lands on ray.num.cpus while TOML says ray.num_cpus.
    num_cpus = _get(tree, "ray.num.cpus", _get(tree, "ray.num_cpus", None))
    address = str(_get(tree, "coordinator.address", ""))
    host, _, port = address.rpartition(":") if address else ("", "", "")
    return Settings(
        data_dir=Path(os.path.expanduser(str(_get(tree, "data.dir", base.data_dir)))),
        queues={k: _as_int(f"worker.queues.{k}", v) for k, v in queues.items()} if queues else base.queues,
        datastore=DatastoreSettings(
            type=str(_get(tree, "datastore.type", "sqlite")),
            sqlite_path=str(_get(tree, "datastore.sqlite.path", "")),
            postgres_dsn=str(_get(tree, "datastore.postgres.dsn", DatastoreSettings.postgres_dsn)),
            retention_logs=str(_get(tree, "datastore.retention.logs.duration", "168h")),
            retention_jobs=str(_get(tree, "datastore.retention.jobs.duration", "8760h")),
            cleanup_interval=str(_get(tree, "datastore.cleanup.interval", "1m")),
        ),
        ray=RaySettings(
            address=str(_get(tree, "ray.address", "")),
            namespace=str(_get(tree, "ray.namespace", RaySettings.namespace)),
            num_cpus=_as_int("ray.num_cpus", num_cpus) if num_cpus not in (None, "") else None,
        ),
        runtime=RuntimeSettings(
            type=str(_get(tree, "runtime.type", "docker")),
            docker_privileged=_as_bool(_get(tree, "runtime.docker.privileged", False)),
            shell_cmd=_as_list(_get(tree, "runtime.shell.cmd", RuntimeSettings.shell_cmd)),
        ),
        api=ApiSettings(
            host=host or "127.0.0.1",
            port=_as_int("coordinator.address", port) if port else 8000,
            body_limit=str(_get(tree, "middleware.web.bodylimit", "500K")),
            redact_enabled=_as_bool(_get(tree, "middleware.job.redact.enabled", True)),
            redact_patterns=_as_list(_get(tree, "middleware.job.redact.patterns", ())),
        ),
    )
