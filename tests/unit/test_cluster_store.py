"""Cluster mode refuses a SQLite store unless datastore.sqlite.cluster says so (tork_ray/cluster.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tork_ray.cluster import ClusterStoreRefused, check_cluster_store
from tork_ray.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def empty_config(tmp_path: Path) -> str:
    """An empty config file: no config.toml of the machine running the tests gets a say."""
    path = tmp_path / "empty.toml"
    path.write_text("")
    return str(path)


def test_sqlite_is_refused_with_the_settings_to_set(empty_config: str) -> None:
    with pytest.raises(ClusterStoreRefused) as refused:
        check_cluster_store(load_settings(environ={}, config_file=empty_config))
    message = refused.value.message
    for name in ("TORK_DATASTORE_TYPE=postgres", "TORK_DATASTORE_POSTGRES_DSN", "TORK_DATASTORE_SQLITE_CLUSTER"):
        assert name in message


@pytest.mark.parametrize(
    "environ",
    [
        {"TORK_DATASTORE_TYPE": "postgres", "TORK_DATASTORE_POSTGRES_DSN": "postgresql+psycopg://u:p@db:5432/tork"},
        {"TORK_DATASTORE_SQLITE_CLUSTER": "true"},
    ],
)
def test_postgres_or_an_explicit_sqlite_is_accepted(environ: dict[str, str], empty_config: str) -> None:
    check_cluster_store(load_settings(environ=environ, config_file=empty_config))


def test_the_toml_key_is_datastore_sqlite_cluster(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[datastore.sqlite]\ncluster = true\n")
    settings = load_settings(environ={}, config_file=str(config))
    assert settings.datastore.sqlite_cluster
    check_cluster_store(settings)


def test_the_command_stops_before_joining_ray(tmp_path: Path, empty_config: str) -> None:
    # `tork-ray run coordinator` on the default store: a clear error and exit status 1, nothing started (the
    # address named is a closed port: joining it would fail otherwise, and much later).
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORK_")}
    env.update(PYTHONPATH=str(ROOT), TORK_RAY_ADDRESS="127.0.0.1:9", TORK_CONFIG=empty_config)
    done = subprocess.run(
        [sys.executable, "-m", "tork_ray.cli", "run", "coordinator"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "error: cluster mode needs a store every node reaches" in done.stderr
    assert "TORK_DATASTORE_TYPE=postgres" in done.stderr
