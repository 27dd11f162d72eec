"""The README's SDK and CLI examples ("From Python", "The tork-ray command"), run as they are written against
the session engine: each block must succeed and print what its `# → text` comments say."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import ray

from tests.engine import LiveEngine

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)
EXPECTED = re.compile(r"# → (.+)$", re.M)
DOCUMENTED_URL = "http://localhost:8000"


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def blocks(title: str, language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall(section(title)) if lang == language]


def expectations(code: str) -> list[str]:
    return [text.strip() for text in EXPECTED.findall(code)]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "job.yaml").write_text(blocks("A first job", "yaml")[0])
    return tmp_path


def environment(live_engine: LiveEngine) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TORK_")}
    url = str(live_engine.http.base_url).rstrip("/")
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "TORK_ENDPOINT": url,
        # ray.init(address="auto") joins the cluster RAY_ADDRESS names: the session's.
        "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "COLUMNS": "200",
    }


def check(done: subprocess.CompletedProcess[str], code: str) -> None:
    assert done.returncode == 0, f"{code}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr[-3000:]}"
    for text in expectations(code):
        assert text in done.stdout, f"{text!r} not printed by:\n{code}\n--- stdout\n{done.stdout}"


def test_the_sections_have_examples() -> None:
    assert len(blocks("From Python", "python")) >= 4 and len(blocks("The tork-ray command", "sh")) == 1


@pytest.mark.parametrize("index", range(len(blocks("From Python", "python"))))
def test_python_example(index: int, live_engine: LiveEngine, workdir: Path) -> None:
    env = environment(live_engine)
    # The examples name the default address; the session's engine is elsewhere.
    code = blocks("From Python", "python")[index].replace(DOCUMENTED_URL, env["TORK_ENDPOINT"])
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True, text=True, timeout=300
    )
    check(done, code)


def test_command_examples(live_engine: LiveEngine, workdir: Path) -> None:
    code = blocks("The tork-ray command", "sh")[0]
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", code],
        cwd=workdir,
        env=environment(live_engine),
        capture_output=True,
        text=True,
        timeout=600,
    )
    check(done, code)


def test_python_examples_type_check_strictly(tmp_path: Path) -> None:
    # The package is typed for its users (py.typed): the examples pass `mypy --strict`, and a misuse is caught
    # (the answers are typed models, not Any).
    for index, code in enumerate(blocks("From Python", "python")):
        (tmp_path / f"example_{index}.py").write_text(code)
    (tmp_path / "misuse.py").write_text(
        "import tork_ray\n\njob = tork_ray.submit('job.yaml')\nprint(job.nope)\n"
        "print(tork_ray.Client().nodes()[0].queues.upper())\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--cache-dir",
            str(tmp_path / ".cache"),
            ".",
        ],
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert all(line.startswith("misuse.py") for line in errors), done.stdout
    assert '"Job" has no attribute "nope"' in done.stdout and '"dict[str, int]" has no attribute "upper"' in done.stdout
