"""worker.executor: "node" (the default) or "task", from TORK_WORKER_EXECUTOR or the TOML file; anything else is
refused at start, naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from tork_ray.errors import BadRequest
from tork_ray.settings import load_settings


def test_the_executor_reads_from_env_or_toml_and_refuses_anything_else(tmp_path: Path) -> None:
    assert load_settings({"TORK_CONFIG": ""}).worker.executor == "node"
    assert load_settings({"TORK_CONFIG": "", "TORK_WORKER_EXECUTOR": "Task"}).worker.executor == "task"
    config = tmp_path / "config.toml"
    config.write_text('[worker]\nexecutor = "task"\n')
    assert load_settings({"TORK_CONFIG": str(config)}).worker.executor == "task"
    for bad in ("actor", "", "nodes"):
        with pytest.raises(BadRequest, match=r"worker\.executor must be one of task, node"):
            load_settings({"TORK_CONFIG": "", "TORK_WORKER_EXECUTOR": bad})


def test_the_linger_is_a_positive_duration(tmp_path: Path) -> None:
    assert load_settings({"TORK_CONFIG": ""}).worker.linger_seconds() == 10.0
    assert load_settings({"TORK_CONFIG": "", "TORK_WORKER_LINGER": "2m"}).worker.linger_seconds() == 120.0
    config = tmp_path / "config.toml"
    config.write_text('[worker]\nlinger = "500ms"\n')
    assert load_settings({"TORK_CONFIG": str(config)}).worker.linger_seconds() == 0.5
    for bad, match in (("soon", r"worker\.linger"), ("0s", r"worker\.linger must be positive")):
        with pytest.raises(BadRequest, match=match):
            load_settings({"TORK_CONFIG": "", "TORK_WORKER_LINGER": bad})
