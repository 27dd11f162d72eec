"""coordinator.each.window: how many children of one each the coordinator holds live at once (10,000 unless
set), from TORK_COORDINATOR_EACH_WINDOW or the TOML file; below 1 (or not a number) is refused at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from tork_ray.errors import BadRequest
from tork_ray.settings import EACH_WINDOW, load_settings


def test_the_each_window_reads_from_env_or_toml_and_refuses_less_than_one(tmp_path: Path) -> None:
    assert load_settings({"TORK_CONFIG": ""}).coordinator.each_window == EACH_WINDOW == 10_000
    assert load_settings({"TORK_CONFIG": "", "TORK_COORDINATOR_EACH_WINDOW": "500"}).coordinator.each_window == 500
    config = tmp_path / "config.toml"
    config.write_text("[coordinator.each]\nwindow = 64\n")
    assert load_settings({"TORK_CONFIG": str(config)}).coordinator.each_window == 64
    for bad in ("0", "-3"):
        with pytest.raises(BadRequest, match=r"coordinator\.each\.window must be 1 or more"):
            load_settings({"TORK_CONFIG": "", "TORK_COORDINATOR_EACH_WINDOW": bad})
    with pytest.raises(BadRequest, match=r"coordinator\.each\.window"):
        load_settings({"TORK_CONFIG": "", "TORK_COORDINATOR_EACH_WINDOW": "many"})
