"""A node's defaults for the tasks it runs: worker.limits.*, hostenv vars, and how the settings read them."""

from __future__ import annotations

from typing import Any

import pytest

from tork_ray.errors import BadRequest
from tork_ray.runtime.base import RunRequest, Sidecar, Step
from tork_ray.runtime.defaults import host_env, with_node_defaults
from tork_ray.settings import RuntimeSettings, load_settings, runtime_settings_from_env
from tork_ray.worker.task import execute


def request(**fields: Any) -> RunRequest:
    main = fields.pop("main", None) or Step(name="main", run="true", env={"OWN": "task"})
    return RunRequest(task_id="t", job_id="j", main=main, **fields)


def test_settings_read_from_env_and_toml_names() -> None:
    env = {
        "TORK_WORKER_LIMITS_CPUS": "0.5",
        "TORK_WORKER_LIMITS_MEMORY": "64m",
        "TORK_WORKER_LIMITS_TIMEOUT": "5s",
        "TORK_MIDDLEWARE_TASK_HOSTENV_VARS": "A, B:ALIAS",
        "TORK_RUNTIME_DOCKER_IMAGE_TTL": "24h",
        "TORK_RUNTIME_DOCKER_IMAGE_VERIFY": "true",
    }
    runtime = load_settings(env, config_file=None).runtime
    assert (runtime.limits_cpus, runtime.limits_memory, runtime.limits_timeout) == ("0.5", "64m", "5s")
    assert runtime.default_cpus_nano() == 500_000_000
    assert runtime.default_memory_bytes() == 64 << 20
    assert runtime.default_timeout_seconds() == 5.0
    assert runtime.hostenv() == (("A", "A"), ("B", "ALIAS"))
    assert runtime.image_ttl_seconds() == 24 * 3600
    assert runtime.docker_image_verify is True


def test_defaults_are_none_and_72h() -> None:
    runtime = load_settings({}, config_file=None).runtime
    assert runtime.default_cpus_nano() is None and runtime.default_memory_bytes() is None
    assert runtime.default_timeout_seconds() is None
    assert runtime.hostenv() == ()
    assert runtime.image_ttl_seconds() == 72 * 3600 and runtime.docker_image_verify is False


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("TORK_WORKER_LIMITS_CPUS", "lots", "setting worker.limits.cpus: failed to parse lots as a rational number"),
        ("TORK_WORKER_LIMITS_MEMORY", "big", "setting worker.limits.memory: invalid size: 'big'"),
        ("TORK_WORKER_LIMITS_TIMEOUT", "soon", 'setting worker.limits.timeout: invalid duration "soon"'),
        ("TORK_RUNTIME_DOCKER_IMAGE_TTL", "3", 'setting runtime.docker.image.ttl: missing unit in duration "3"'),
        ("TORK_MIDDLEWARE_TASK_HOSTENV_VARS", "A:B:C", "setting middleware.task.hostenv.vars: invalid env var spec"),
    ],
)
def test_a_bad_value_stops_the_engine_at_start_naming_the_setting(key: str, value: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        load_settings({key: value}, config_file=None)
    assert caught.value.message.startswith(message)


def test_a_node_overlays_its_own_limits_and_hostenv() -> None:
    base = RuntimeSettings(limits_cpus="1", hostenv_vars=("X",))
    node = runtime_settings_from_env(
        {"TORK_WORKER_LIMITS_MEMORY": "1g", "TORK_MIDDLEWARE_TASK_HOSTENV_VARS": "Y:Z", "TORK_WORKER_QUEUES_A": "2"},
        base,
    )
    assert (node.limits_cpus, node.limits_memory, node.hostenv_vars) == ("1", "1g", ("Y:Z",))
    with pytest.raises(BadRequest, match=r"worker\.limits\.timeout"):
        runtime_settings_from_env({"TORK_WORKER_LIMITS_TIMEOUT": "x"}, base)


def test_empty_limits_and_timeout_are_filled_and_the_tasks_own_kept() -> None:
    settings = RuntimeSettings(limits_cpus="2", limits_memory="1g", limits_timeout="1m")
    filled = with_node_defaults(request(), settings, {})
    assert (filled.cpus_nano, filled.memory_bytes, filled.timeout_seconds) == (2_000_000_000, 1 << 30, 60.0)
    own = with_node_defaults(request(cpus_nano=1, memory_bytes=2, timeout_seconds=3.0), settings, {})
    assert (own.cpus_nano, own.memory_bytes, own.timeout_seconds) == (1, 2, 3.0)


def test_no_defaults_leave_the_request_as_it_was() -> None:
    original = request()
    assert with_node_defaults(original, RuntimeSettings(hostenv_vars=("ABSENT",)), {}) is original


def test_host_env_reaches_main_pre_and_post_and_wins_over_the_tasks() -> None:
    settings = RuntimeSettings(hostenv_vars=("OWN", "HOST_B:ALIAS", "MISSING"))
    environ = {"OWN": "host", "HOST_B": "b", "UNLISTED": "secret"}
    original = request(
        pre=(Step(name="pre", run="true"),),
        post=(Step(name="post", run="true", env={"MISSING": "kept"}),),
        sidecars=(Sidecar(step=Step(name="web", image="x")),),
    )
    done = with_node_defaults(original, settings, environ)
    assert done.main.env == {"OWN": "host", "ALIAS": "b"}
    assert done.pre[0].env == {"OWN": "host", "ALIAS": "b"}
    assert done.post[0].env == {"MISSING": "kept", "OWN": "host", "ALIAS": "b"}
    assert done.sidecars[0].step.env == {}  # as Tork: the task and its pre/post only
    assert original.main.env == {"OWN": "task"}  # the request itself is frozen and untouched


def test_host_env_skips_what_the_host_lacks() -> None:
    assert host_env((("A", "A"), ("B", "C")), {"B": "1"}) == {"C": "1"}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        calls = self.calls

        class Method:
            @staticmethod
            def remote(*args: Any) -> None:
                calls.append((name, args))

        return Method


def test_worker_cpu_or_memory_defaults_fail_every_task_on_the_shell_runtime() -> None:
    for settings in (RuntimeSettings(type="shell", limits_cpus="1"), RuntimeSettings(type="shell", limits_memory="1g")):
        outcome = execute(request(main=Step(name="main", run="true")), Recorder(), settings, "n")
        assert outcome["error"] == "limits is not supported on shell runtime" and outcome["nodeId"] == "n"


def test_worker_timeout_default_applies_on_the_shell_runtime() -> None:
    settings = RuntimeSettings(type="shell", limits_timeout="300ms", hostenv_vars=("TORK_UNIT_HOST",))
    outcome = execute(request(main=Step(name="main", run="sleep 30")), Recorder(), settings, "n")
    assert outcome["error"].startswith("context deadline exceeded")


def test_a_bad_node_value_is_the_tasks_error() -> None:
    settings = RuntimeSettings(type="shell", limits_timeout="soon")  # made directly: not checked at start
    outcome = execute(request(main=Step(name="main", run="true")), Recorder(), settings, "n")
    assert outcome["error"] == 'setting worker.limits.timeout: invalid duration "soon"' and outcome["nodeId"] == "n"
