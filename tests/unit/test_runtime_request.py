"""From an evaluated task spec to the RunRequest a runtime gets, and the runtime settings a node uses."""

from __future__ import annotations

from tork_ray.coordinator.request import build_request
from tork_ray.runtime.base import Mount, Probe, Registry, Sidecar, Step
from tork_ray.settings import RuntimeSettings, load_settings, runtime_settings_from_env

SPEC = {
    "name": "main task",
    "image": "registry.example:5000/app:1",
    "run": "echo hi",
    "cmd": ["a", "b"],
    "entrypoint": ["sh", "-c"],
    "env": {"A": "1"},
    "files": {"f.txt": "F"},
    "workdir": "/src",
    "timeout": "1m30s",
    "limits": {"cpus": "0.5", "memory": "20m"},
    "registry": {"username": "u", "password": "p"},
    "mounts": [
        {"type": "volume", "target": "/data", "opts": {"o": "x"}},
        {"type": "bind", "source": "/srv", "target": "/in"},
    ],
    "networks": ["n1"],
    "gpus": "all",
    "pre": [{"name": "prep", "image": "alpine", "run": "true", "registry": {"username": "pu", "password": "pp"}}],
    "post": [{"image": "alpine", "run": "true"}],
    "sidecars": [
        {"name": "web", "image": "nginx", "probe": {"path": "/health", "port": 8080, "timeout": "5s"}},
        {"name": "db", "image": "postgres", "probe": {"port": 5432}},
        {"name": "plain", "image": "redis"},
    ],
}


def test_every_runtime_field_is_carried() -> None:
    request = build_request("t1", "j1", SPEC, "scope1")
    assert (request.task_id, request.job_id, request.scope) == ("t1", "j1", "scope1")
    assert request.main == Step(
        name="main task",
        image="registry.example:5000/app:1",
        run="echo hi",
        cmd=("a", "b"),
        entrypoint=("sh", "-c"),
        env={"A": "1"},
        files={"f.txt": "F"},
        registry=Registry("u", "p"),
    )
    assert request.workdir == "/src"
    assert request.timeout_seconds == 90
    assert request.cpus_nano == 500_000_000
    assert request.memory_bytes == 20 * 2**20
    assert request.mounts == (Mount("volume", "/data", "", {"o": "x"}), Mount("bind", "/in", "/srv", {}))
    assert request.networks == ("n1",)
    assert request.gpus == "all"


def test_pre_post_and_sidecars() -> None:
    request = build_request("t1", "j1", SPEC, "s")
    assert request.pre[0].registry == Registry("pu", "pp")
    assert request.post[0].name == "post-0"  # a nameless aux task still gets a name for logs and aliases
    web, db, plain = request.sidecars
    assert web == Sidecar(Step(name="web", image="nginx"), Probe(port=8080, path="/health", timeout_seconds=5))
    assert db.probe == Probe(port=5432, path="/", timeout_seconds=60)  # Tork's defaults
    assert plain.probe is None
    assert request.steps == (request.pre[0], request.main, request.post[0])


def test_registry_password_never_in_repr() -> None:
    assert "secret-pass" not in repr(Registry("u", "secret-pass"))
    spec = {**SPEC, "registry": {"username": "u", "password": "secret-pass"}}
    assert "secret-pass" not in repr(build_request("t", "j", spec, ""))


def test_minimal_spec() -> None:
    request = build_request("t1", "j1", {"name": "x", "image": "busybox", "run": "true"}, "")
    assert request.timeout_seconds is None and request.cpus_nano is None and request.memory_bytes is None
    assert request.mounts == () and request.sidecars == () and request.main.registry is None


def test_runtime_settings_from_env() -> None:
    settings = load_settings(
        {
            "TORK_RUNTIME_TYPE": "shell",
            "TORK_RUNTIME_SHELL_CMD": "sh,-c",
            "TORK_RUNTIME_SHELL_UID": "65534",
            "TORK_RUNTIME_DOCKER_CONFIG": "/etc/docker-auth.json",
            "TORK_RUNTIME_DOCKER_PRIVILEGED": "true",
            "TORK_RUNTIME_PODMAN_HOST_NETWORK": "true",
            "TORK_MOUNTS_BIND_ALLOWED": "true",
            "TORK_MOUNTS_BIND_SOURCES": "/srv/a,/srv/b",
            "TORK_MOUNTS_BIND_DOCKER_SOCKET": "true",
        },
        config_file=None,
    ).runtime
    assert settings == RuntimeSettings(
        type="shell",
        docker_privileged=True,
        docker_config="/etc/docker-auth.json",
        shell_cmd=("sh", "-c"),
        shell_uid="65534",
        podman_host_network=True,
        bind_allowed=True,
        bind_sources=("/srv/a", "/srv/b"),
        bind_docker_socket=True,
    )
    assert load_settings({}).runtime == RuntimeSettings()


def test_a_node_overlays_its_own_variables() -> None:
    sent = RuntimeSettings(type="docker", bind_sources=("/srv",))
    assert runtime_settings_from_env({"PATH": "/bin", "TORK_DATA_DIR": "/x"}, sent) is sent
    mine = runtime_settings_from_env({"TORK_RUNTIME_TYPE": "podman", "TORK_MOUNTS_BIND_ALLOWED": "1"}, sent)
    assert mine == RuntimeSettings(type="podman", bind_allowed=True, bind_sources=("/srv",))
