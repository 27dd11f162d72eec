"""One typed settings tree, read once from a TOML file and TORK_* environment variables (SPEC §7)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tork_ray.errors import BadRequest
from tork_ray.spec.units import parse_cpus, parse_duration, parse_memory
from tork_ray.store.retry_settings import StoreRetrySettings, store_retry_settings
from tork_ray.webhooks.config import WebhookSettings, webhook_settings

T = TypeVar("T")

CONFIG_CANDIDATES = ("config.local.toml", "config.toml", "~/tork/config.toml", "/etc/tork/config.toml")


@dataclass(frozen=True)
class DatastoreSettings:
    type: str = "sqlite"  # sqlite | postgres
    sqlite_path: str = ""  # "" → <data dir>/tork.db
    # datastore.sqlite.cluster: cluster mode refuses a SQLite store (a file on one node, which a coordinator
    # restarted on another node would open empty) unless this says the user knows (one-node clusters, tests).
    sqlite_cluster: bool = False
    # datastore.sqlite.busy.timeout: how long SQLite itself waits for a lock another process holds before it
    # answers "database is locked" (an outage: the coordinator's writes then wait by datastore.retry.*).
    sqlite_busy_timeout: str = "30s"
    postgres_dsn: str = "postgresql+psycopg://tork:tork@localhost:5432/tork"
    retention_logs: str = "168h"
    retention_jobs: str = "8760h"
    # How often the coordinator deletes expired jobs (autoDelete, retention) and old log parts.
    cleanup_interval: str = "1m"
    # datastore.encryption.key: seals every stored copy of a secret (store/crypto.py); "" stores them in clear
    # (the engine warns at start). Kept out of repr, so settings printed into a log do not carry it.
    encryption_key: str = field(default="", repr=False)

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
    """What runs a task on a node (SPEC §7 `runtime.*`, `mounts.*`). Hashable: workers cache a runtime per value."""

    type: str = "docker"  # docker | shell | podman
    docker_privileged: bool = False
    docker_config: str = ""  # a Docker config.json whose `auths` serve image pulls (runtime.docker.config)
    docker_host: str = ""  # runtime.docker.host: the engine's address (unix:///..., tcp://...); "" → DOCKER_HOST
    shell_cmd: tuple[str, ...] = ("bash", "-c")
    shell_uid: str = "-"  # "-": run as the worker's own user
    shell_gid: str = "-"
    podman_privileged: bool = False
    podman_host_network: bool = False
    bind_allowed: bool = False  # mounts.bind.allowed
    bind_sources: tuple[str, ...] = ()  # mounts.bind.sources: () = any source
    # Extension: the Docker socket gives root on the host, so even with binds allowed it needs its own yes.
    bind_docker_socket: bool = False  # mounts.bind.docker.socket
    # worker.limits.*: this node's defaults for a task's empty limits.cpus / limits.memory / timeout.
    limits_cpus: str = ""
    limits_memory: str = ""
    limits_timeout: str = ""
    hostenv_vars: tuple[str, ...] = ()  # middleware.task.hostenv.vars: NAME or NAME:ALIAS
    docker_image_ttl: str = "72h"  # runtime.docker.image.ttl: "0" keeps pulled images for ever
    docker_image_verify: bool = False  # runtime.docker.image.verify

    def default_cpus_nano(self) -> int | None:
        return _setting("worker.limits.cpus", parse_cpus, self.limits_cpus)

    def default_memory_bytes(self) -> int | None:
        return _setting("worker.limits.memory", parse_memory, self.limits_memory)

    def default_timeout_seconds(self) -> float | None:
        return _setting("worker.limits.timeout", parse_duration, self.limits_timeout) or None

    def image_ttl_seconds(self) -> float:
        return _setting("runtime.docker.image.ttl", parse_duration, self.docker_image_ttl) or 0.0

    def hostenv(self) -> tuple[tuple[str, str], ...]:
        """(host name, task name) pairs of middleware.task.hostenv.vars, as Tork reads `NAME` or `NAME:ALIAS`."""
        pairs = []
        for spec in self.hostenv_vars:
            parts = spec.split(":")
            if len(parts) > 2 or not all(part.strip() for part in parts):
                raise BadRequest(f"setting middleware.task.hostenv.vars: invalid env var spec: {spec!r}")
            pairs.append((parts[0].strip(), parts[-1].strip()))
        return tuple(pairs)

    def checked(self) -> RuntimeSettings:
        """Itself, once every value that needs parsing parses: a bad one stops the engine at start."""
        self.default_cpus_nano(), self.default_memory_bytes(), self.default_timeout_seconds()
        self.image_ttl_seconds(), self.hostenv()
        return self


def _setting(dotted: str, parse: Callable[[str], T], value: str) -> T | None:
    """`value` parsed, None when empty; a bad value is an error that names the setting."""
    if not value.strip():
        return None
    try:
        return parse(value.strip())
    except BadRequest as exc:
        raise BadRequest(f"setting {dotted}: {exc.message}") from None


@dataclass(frozen=True)
class CorsSettings:
    """middleware.web.cors.*: off by default, as Tork's."""

    enabled: bool = False
    origins: tuple[str, ...] = ("*",)
    methods: tuple[str, ...] = ("*",)
    headers: tuple[str, ...] = ("*",)
    credentials: bool = False


@dataclass(frozen=True)
class RateLimitSettings:
    """middleware.web.ratelimit.*: requests per second per client IP; excess answers 429."""

    enabled: bool = False
    rps: int = 20


@dataclass(frozen=True)
class RequestLogSettings:
    """middleware.web.logger.*: one log line per request, except those matching `skip` (`*` wildcards)."""

    enabled: bool = True
    level: str = "DEBUG"
    skip: tuple[str, ...] = ("GET /health",)


# Route groups that coordinator.api.endpoints.<name> = false turns off (jobs also covers scheduled jobs).
API_ENDPOINTS = ("health", "jobs", "tasks", "nodes", "queues", "metrics", "users", "ui")  # ui: the web UI


@dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    body_limit: str = "500K"
    redact_enabled: bool = True
    redact_patterns: tuple[str, ...] = ()
    cors: CorsSettings = field(default_factory=CorsSettings)
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    request_log: RequestLogSettings = field(default_factory=RequestLogSettings)
    disabled_endpoints: tuple[str, ...] = ()
    # How often a log stream (server-sent events) looks for new log parts in the store.
    log_poll_seconds: float = 0.25


@dataclass(frozen=True)
class AuthSettings:
    """Who may call the API (SPEC §6.2): basic auth against users, key auth, and the first admin.

    Both switches off (the default, as Tork): no credentials, every caller sees every job. Secrets are kept out
    of repr, so settings printed into a log never carry them."""

    basic_enabled: bool = False  # middleware.web.basicauth.enabled
    key_enabled: bool = False  # middleware.web.keyauth.enabled
    key: str = field(default="", repr=False)  # middleware.web.keyauth.key: "" → a random one, logged at start
    # auth.admin.username / .password: created (or its password reset) at start, and made a member of `admin`.
    admin_username: str = ""
    admin_password: str = field(default="", repr=False)
    # auth.failures.limit / .window: failed logins allowed per client IP and per username in a window.
    failures_limit: int = 10
    failures_window: str = "1m"
    # auth.cache.ttl: how long a verified username/password pair is trusted without another scrypt.
    cache_ttl: str = "30s"

    @property
    def enabled(self) -> bool:
        return self.basic_enabled or self.key_enabled


@dataclass(frozen=True)
class LimitsSettings:
    """limits.*: bounds on what one job document may ask of the engine (a document comes from anyone who can
    reach the API). Over a limit → 400 naming the limit and the field; at run time, the task fails naming it."""

    tasks: int = 10_000  # limits.tasks: task definitions in one document, nested ones included
    depth: int = 16  # limits.depth: nesting of parallel / each / subjob blocks
    each_items: int = 100_000  # limits.each.items: items one each may expand to (sequence() included)
    list_length: int = 10_000  # limits.list.length: entries of any one list or map (env, files, tags, ...)
    string_length: int = 65_536  # limits.string.length: characters of any one string of a document
    template_output: int = 1_048_576  # limits.template.output: characters one template may render to


# coordinator.each.window: the children of one each the coordinator holds live at once; the rest wait CREATED in
# the store, released one by one as earlier ones finish. It caps each.concurrency, and is the concurrency of an
# each that sets none: memory stays bounded by it, not by the list (2.8 KiB a held child, 27 MiB for 10,000).
EACH_WINDOW = 10_000


@dataclass(frozen=True)
class CoordinatorSettings:
    """coordinator.*: how the coordinator treats work it finds unfinished after a restart, and how much of an
    each it holds at once."""

    # coordinator.redeliveries: a task that was RUNNING when the coordinator stopped is run again at most this
    # many times (counted in the task's `redelivered`), unless it sets its own `redeliveries`; after that it
    # FAILS and its retry rules decide. Tasks that had not started are simply queued again.
    redeliveries: int = 1
    each_window: int = EACH_WINDOW  # coordinator.each.window (above)


@dataclass(frozen=True)
class WorkerSettings:
    """worker.*: how a worker reports on the tasks it runs (worker.limits.* and worker.queues live elsewhere)."""

    # worker.start_report_delay (TORK_WORKER_START_REPORT_DELAY): a task still running this long after its start
    # reports RUNNING then; one that ends sooner brings its start with its result, stored in one transaction (one
    # actor call and one commit less per short task). "0": every start is reported at once.
    start_report_delay: str = "50ms"
    # worker.executor (TORK_WORKER_EXECUTOR): "node", one executor actor per node and queue holding the queue's
    # slots while it has tasks, tasks sent and outcomes reported in batches (worker/executor.py); "task", one Ray
    # task per Tork task. "node" is the default by the numbers: on 2 slots a parallel of trivial shell tasks ran
    # at 580-590 tasks/s against 304 with Ray tasks, whose own raw rate here is 270-780 (benchmarks/README.md).
    executor: str = "node"
    # worker.linger (TORK_WORKER_LINGER): how long an executor (worker.executor = node) with no task keeps its
    # queue's slots before it stops and gives them back to the node (to another engine, or an autoscaler).
    linger: str = "10s"

    def start_report_seconds(self) -> float:
        return _setting("worker.start_report_delay", parse_duration, self.start_report_delay) or 0.0

    def linger_seconds(self) -> float:
        return _setting("worker.linger", parse_duration, self.linger) or 0.0


EXECUTORS = ("task", "node")  # worker.executor


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path.home() / ".tork_ray")
    queues: Mapping[str, int] = field(default_factory=lambda: {"default": os.cpu_count() or 1})
    datastore: DatastoreSettings = field(default_factory=DatastoreSettings)
    ray: RaySettings = field(default_factory=RaySettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    coordinator: CoordinatorSettings = field(default_factory=CoordinatorSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    store_retry: StoreRetrySettings = field(default_factory=StoreRetrySettings)  # datastore.retry.*
    worker: WorkerSettings = field(default_factory=WorkerSettings)

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


def _duration_setting(dotted: str, value: Any) -> str:
    """`value` as a string, refused at load (naming the setting) unless it is a duration."""
    _setting(dotted, parse_duration, str(value))
    return str(value)


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


def runtime_settings(tree: Mapping[str, Any], base: RuntimeSettings | None = None) -> RuntimeSettings:
    """The `runtime.*`, `mounts.*`, `worker.limits.*` and `middleware.task.hostenv.*` keys of `tree`; keys it
    lacks keep `base`'s values (a worker node overlays its own variables on what the coordinator sent)."""
    b = base or RuntimeSettings()
    return RuntimeSettings(
        type=str(_get(tree, "runtime.type", b.type)),
        docker_privileged=_as_bool(_get(tree, "runtime.docker.privileged", b.docker_privileged)),
        docker_config=str(_get(tree, "runtime.docker.config", b.docker_config)),
        docker_host=str(_get(tree, "runtime.docker.host", b.docker_host)),
        shell_cmd=_as_list(_get(tree, "runtime.shell.cmd", b.shell_cmd)),
        shell_uid=str(_get(tree, "runtime.shell.uid", b.shell_uid)),
        shell_gid=str(_get(tree, "runtime.shell.gid", b.shell_gid)),
        podman_privileged=_as_bool(_get(tree, "runtime.podman.privileged", b.podman_privileged)),
        podman_host_network=_as_bool(_get(tree, "runtime.podman.host.network", b.podman_host_network)),
        bind_allowed=_as_bool(_get(tree, "mounts.bind.allowed", b.bind_allowed)),
        bind_sources=_as_list(_get(tree, "mounts.bind.sources", b.bind_sources)),
        bind_docker_socket=_as_bool(_get(tree, "mounts.bind.docker.socket", b.bind_docker_socket)),
        limits_cpus=str(_get(tree, "worker.limits.cpus", b.limits_cpus)),
        limits_memory=str(_get(tree, "worker.limits.memory", b.limits_memory)),
        limits_timeout=str(_get(tree, "worker.limits.timeout", b.limits_timeout)),
        hostenv_vars=_as_list(_get(tree, "middleware.task.hostenv.vars", b.hostenv_vars)),
        docker_image_ttl=str(_get(tree, "runtime.docker.image.ttl", b.docker_image_ttl)),
        docker_image_verify=_as_bool(_get(tree, "runtime.docker.image.verify", b.docker_image_verify)),
    ).checked()


NODE_PREFIXES = ("TORK_RUNTIME_", "TORK_MOUNTS_", "TORK_WORKER_LIMITS_", "TORK_MIDDLEWARE_TASK_HOSTENV_")


def runtime_settings_from_env(environ: Mapping[str, str], base: RuntimeSettings) -> RuntimeSettings:
    """`base` overlaid with the node-level variables of `environ` (a node's own): TORK_RUNTIME_*, TORK_MOUNTS_*,
    TORK_WORKER_LIMITS_* and TORK_MIDDLEWARE_TASK_HOSTENV_*."""
    tree: dict[str, Any] = {}
    for key, value in environ.items():
        if key.startswith(NODE_PREFIXES):
            _put(tree, key[len("TORK_") :].lower().split("_"), value)
    return runtime_settings(tree, base) if tree else base


def _build(tree: Mapping[str, Any]) -> Settings:
    base = Settings()
    queues = _get(tree, "worker.queues", None)
    # Env names split on "_", so TORK_RAY_NUM_CPUS lands on ray.num.cpus while TOML says ray.num_cpus.
    num_cpus = _get(tree, "ray.num.cpus", _get(tree, "ray.num_cpus", None))
    return Settings(
        data_dir=Path(os.path.expanduser(str(_get(tree, "data.dir", base.data_dir)))),
        queues={k: _as_int(f"worker.queues.{k}", v) for k, v in queues.items()} if queues else base.queues,
        datastore=DatastoreSettings(
            type=str(_get(tree, "datastore.type", "sqlite")),
            sqlite_path=str(_get(tree, "datastore.sqlite.path", "")),
            sqlite_cluster=_as_bool(_get(tree, "datastore.sqlite.cluster", False)),
            sqlite_busy_timeout=_duration_setting(
                "datastore.sqlite.busy.timeout", _get(tree, "datastore.sqlite.busy.timeout", "30s")
            ),
            postgres_dsn=str(_get(tree, "datastore.postgres.dsn", DatastoreSettings.postgres_dsn)),
            retention_logs=str(_get(tree, "datastore.retention.logs.duration", "168h")),
            retention_jobs=str(_get(tree, "datastore.retention.jobs.duration", "8760h")),
            cleanup_interval=str(_get(tree, "datastore.cleanup.interval", "1m")),
            encryption_key=str(_get(tree, "datastore.encryption.key", "")),
        ),
        ray=RaySettings(
            address=str(_get(tree, "ray.address", "")),
            namespace=str(_get(tree, "ray.namespace", RaySettings.namespace)),
            num_cpus=_as_int("ray.num_cpus", num_cpus) if num_cpus not in (None, "") else None,
        ),
        runtime=runtime_settings(tree),
        api=api_settings(tree),
        limits=limits_settings(tree),
        coordinator=coordinator_settings(tree),
        auth=auth_settings(tree),
        webhooks=webhook_settings(lambda dotted, default: _get(tree, dotted, default), _as_int, _as_list),
        store_retry=store_retry_settings(lambda dotted, default: _get(tree, dotted, default)),
        worker=worker_settings(tree),
    )


def worker_settings(tree: Mapping[str, Any]) -> WorkerSettings:
    """worker.start_report_delay (TOML) or TORK_WORKER_START_REPORT_DELAY (lands on worker.start.report.delay)."""
    delay = _get(tree, "worker.start_report_delay", _get(tree, "worker.start.report.delay", "50ms"))
    executor = str(_get(tree, "worker.executor", "node")).strip().lower()
    if executor not in EXECUTORS:
        raise BadRequest(f"setting worker.executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    linger = _get(tree, "worker.linger", "10s")
    settings = WorkerSettings(
        start_report_delay=_duration_setting("worker.start_report_delay", delay),
        executor=executor,
        linger=_duration_setting("worker.linger", linger),
    )
    if settings.start_report_seconds() < 0:
        raise BadRequest(f"setting worker.start_report_delay must not be negative, got {delay}")
    if settings.linger_seconds() <= 0:
        raise BadRequest(f"setting worker.linger must be positive, got {linger}")
    return settings


def auth_settings(tree: Mapping[str, Any]) -> AuthSettings:
    """middleware.web.basicauth.*, middleware.web.keyauth.* (Tork's names) and auth.* (tork_ray's own)."""
    web = "middleware.web"
    settings = AuthSettings(
        basic_enabled=_as_bool(_get(tree, f"{web}.basicauth.enabled", False)),
        key_enabled=_as_bool(_get(tree, f"{web}.keyauth.enabled", False)),
        key=str(_get(tree, f"{web}.keyauth.key", "")),
        admin_username=str(_get(tree, "auth.admin.username", "")).strip(),
        admin_password=str(_get(tree, "auth.admin.password", "")),
        failures_limit=_as_int("auth.failures.limit", _get(tree, "auth.failures.limit", 10)),
        failures_window=str(_get(tree, "auth.failures.window", "1m")),
        cache_ttl=str(_get(tree, "auth.cache.ttl", "30s")),
    )
    if settings.failures_limit < 1:
        raise BadRequest(f"setting auth.failures.limit must be a positive integer, got {settings.failures_limit}")
    for dotted, value in (("auth.failures.window", settings.failures_window), ("auth.cache.ttl", settings.cache_ttl)):
        _setting(dotted, parse_duration, value)
    if bool(settings.admin_username) != bool(settings.admin_password):
        raise BadRequest("settings auth.admin.username and auth.admin.password must be set together")
    return settings


def coordinator_settings(tree: Mapping[str, Any]) -> CoordinatorSettings:
    redeliveries = _as_int("coordinator.redeliveries", _get(tree, "coordinator.redeliveries", 1))
    if redeliveries < 0:
        raise BadRequest(f"setting coordinator.redeliveries must be 0 or more, got {redeliveries}")
    each_window = _as_int("coordinator.each.window", _get(tree, "coordinator.each.window", EACH_WINDOW))
    if each_window < 1:
        raise BadRequest(f"setting coordinator.each.window must be 1 or more, got {each_window}")
    return CoordinatorSettings(redeliveries=redeliveries, each_window=each_window)


def limits_settings(tree: Mapping[str, Any]) -> LimitsSettings:
    """limits.* (TORK_LIMITS_EACH_ITEMS=... lands on limits.each.items); each must be a positive integer."""
    base = LimitsSettings()
    values: dict[str, int] = {}
    for name in ("tasks", "depth", "each_items", "list_length", "string_length", "template_output"):
        dotted = "limits." + name.replace("_", ".")
        value = _as_int(dotted, _get(tree, dotted, getattr(base, name)))
        if value < 1:
            raise BadRequest(f"setting {dotted} must be a positive integer, got {value}")
        values[name] = value
    return LimitsSettings(**values)


def api_settings(tree: Mapping[str, Any]) -> ApiSettings:
    """coordinator.address, coordinator.api.endpoints.*, middleware.web.* and middleware.job.redact.*."""
    address = str(_get(tree, "coordinator.address", ""))
    host, _, port = address.rpartition(":") if address else ("", "", "")
    web = "middleware.web"
    endpoints = _get(tree, "coordinator.api.endpoints", {})
    return ApiSettings(
        host=host or "127.0.0.1",
        port=_as_int("coordinator.address", port) if port else 8000,
        body_limit=str(_get(tree, f"{web}.bodylimit", "500K")),
        redact_enabled=_as_bool(_get(tree, "middleware.job.redact.enabled", True)),
        redact_patterns=_as_list(_get(tree, "middleware.job.redact.patterns", ())),
        cors=CorsSettings(
            enabled=_as_bool(_get(tree, f"{web}.cors.enabled", False)),
            origins=_as_list(_get(tree, f"{web}.cors.origins", ("*",))),
            methods=_as_list(_get(tree, f"{web}.cors.methods", ("*",))),
            headers=_as_list(_get(tree, f"{web}.cors.headers", ("*",))),
            credentials=_as_bool(_get(tree, f"{web}.cors.credentials", False)),
        ),
        rate_limit=RateLimitSettings(
            enabled=_as_bool(_get(tree, f"{web}.ratelimit.enabled", False)),
            rps=_as_int(f"{web}.ratelimit.rps", _get(tree, f"{web}.ratelimit.rps", 20)),
        ),
        request_log=RequestLogSettings(
            enabled=_as_bool(_get(tree, f"{web}.logger.enabled", True)),
            level=str(_get(tree, f"{web}.logger.level", "DEBUG")).upper(),
            skip=_as_list(_get(tree, f"{web}.logger.skip", ("GET /health",))),
        ),
        disabled_endpoints=tuple(
            name for name in API_ENDPOINTS if isinstance(endpoints, Mapping) and not _as_bool(endpoints.get(name, True))
        ),
    )
