"""The head resource: what the head offers, what our actors ask for, and the clear error when no node offers it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tork_ray.cluster import queue_resources
from tork_ray.errors import Unavailable
from tork_ray.placement import HEAD_RESOURCE, check_head, head_resources, node_resources, on_head
from tork_ray.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_only_the_head_offers_the_head_resource() -> None:
    settings = Settings(queues={"default": 4, "gpu": 1})
    assert json.loads(queue_resources(settings)) == {"queue:default": 4, "queue:gpu": 1}
    assert json.loads(queue_resources(settings, head=True)) == {"queue:default": 4, "queue:gpu": 1, HEAD_RESOURCE: 1}


def test_a_queue_with_no_slots_is_left_out() -> None:
    # TORK_WORKER_QUEUES_DEFAULT=0: a head that runs the coordinator and the API but no tasks.
    assert json.loads(queue_resources(Settings(queues={"default": 0}), head=True)) == {HEAD_RESOURCE: 1}


def test_an_actor_on_the_head_fits_the_head_many_times() -> None:
    assert on_head()[HEAD_RESOURCE] * 1000 <= head_resources()[HEAD_RESOURCE]


def test_standalone_ray_offers_the_head_resource() -> None:
    assert node_resources(Settings(queues={"default": 2}), head=True) == {"queue:default": 2.0, HEAD_RESOURCE: 1.0}


def test_a_cluster_without_a_head_resource_is_refused_with_the_fix() -> None:
    check_head({"CPU": 2.0, HEAD_RESOURCE: 1.0})
    with pytest.raises(Unavailable, match=r"tork-ray resources --head"):
        check_head({"CPU": 2.0, "queue:default": 2.0})


def test_cluster_yamls_give_the_head_and_only_the_head_the_resource() -> None:
    onprem = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    assert "tork-ray resources --head" in " ".join(onprem["head_start_ray_commands"])
    assert "--head" not in " ".join(onprem["worker_start_ray_commands"])
    cloud = yaml.safe_load((ROOT / "cluster.aws.yaml").read_text())
    types = cloud["available_node_types"]
    assert [name for name, kind in types.items() if HEAD_RESOURCE in kind["resources"]] == [cloud["head_node_type"]]
