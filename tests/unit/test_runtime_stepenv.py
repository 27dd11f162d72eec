"""A step's env script (runtime/stepenv.py): what it carries, and that a shell reads every value back literally."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tork_ray.runtime.base import Step
from tork_ray.runtime.stepenv import Wrap, script_env, write_env_script


def test_env_script_quotes_every_value_literally(tmp_path: Path) -> None:
    values = {"A": 'it\'s $HOME `x` \\ "q"', "B": "two\nlines", "C": "", "D": "'"}
    step = Step(name="m", image="b", run="x", env={**values, "BAD-NAME": "v"})
    assert set(script_env(step)) == set(values)
    assert write_env_script(tmp_path, step)
    assert (tmp_path / "env").stat().st_mode & 0o777 == 0o444
    script = f'. {tmp_path}/env && printf \'%s\\0\' "$A" "$B" "$C" "$D"'
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True, env={}).stdout.decode()
    assert out.split("\0")[:-1] == list(values.values())


def test_a_given_up_wrap_leaves_no_env_script(tmp_path: Path) -> None:
    step = Step(name="m", image="b", cmd=("printenv",), env={"TOKEN": "s"})
    assert script_env(step) == {} and script_env(step, wrapped=True) == {"TOKEN": "s"}
    assert write_env_script(tmp_path, step, Wrap(argv=("printenv",), prologue="unset PWD\n"))
    assert (tmp_path / "env").read_text() == "unset PWD\nexport TOKEN='s'\n"
    # No /bin/sh in the image: made again unwrapped, the env in its configuration and no file left beside it.
    assert not write_env_script(tmp_path, step, None)
    assert not (tmp_path / "env").exists()
