"""A finished step's directory removed off the task's clock (runtime/discard.py): the two-call path for the
usual case, and everything else a task may leave there removed whole, nothing outside it touched."""

from __future__ import annotations

import os
import threading
from functools import partial
from pathlib import Path

import pytest

from tork_ray.runtime.discard import discarder, remove_now
from tork_ray.runtime.workspace import ENTRYPOINT_FILE


def test_a_directory_holding_only_its_script_is_removed(tmp_path: Path) -> None:
    step = tmp_path / "step"
    step.mkdir()
    (step / ENTRYPOINT_FILE).write_text("true")
    done: list[bool] = []
    remove_now(step, lambda: done.append(True), likely=(ENTRYPOINT_FILE,))
    assert not step.exists() and done == [True]


@pytest.mark.parametrize("script_is_a_directory", [False, True])
def test_whatever_the_task_left_is_removed_and_nothing_outside(tmp_path: Path, script_is_a_directory: bool) -> None:
    outside = tmp_path / "host-file"
    outside.write_text("keep me")
    step = tmp_path / "step"
    (step / "deep" / "er").mkdir(parents=True)
    (step / "deep" / "er" / "file").write_text("x")
    (step / "stdout").write_text("result")
    os.symlink(outside, step / "link")
    if script_is_a_directory:
        (step / ENTRYPOINT_FILE).mkdir()
        (step / ENTRYPOINT_FILE / "inside").write_text("x")
    else:
        os.symlink(outside, step / ENTRYPOINT_FILE)  # a name the fast path unlinks: the link goes, not its target
    remove_now(step, lambda: None, likely=(ENTRYPOINT_FILE,))
    assert not step.exists()
    assert outside.read_text() == "keep me"


def test_the_discarder_removes_in_order_and_then_calls_back(tmp_path: Path) -> None:
    steps = [tmp_path / f"step-{index}" for index in range(20)]
    removed: list[Path] = []
    all_done = threading.Event()
    for step in steps:
        step.mkdir()
        (step / ENTRYPOINT_FILE).write_text("true")

    def then(step: Path) -> None:
        removed.append(step)
        if len(removed) == len(steps):
            all_done.set()

    for step in steps:
        discarder().discard(step, partial(then, step), likely=(ENTRYPOINT_FILE,))
    assert all_done.wait(30), f"removed {len(removed)} of {len(steps)}"
    assert removed == steps and not any(step.exists() for step in steps)
