"""The `ray up` check, inside its own network and PID namespaces (scripts/ray-up-check.sh puts it there).

Two "hosts" on loopback, each an sshd of ours with its own home directory (SetEnv HOME): the head 127.0.0.1 and
a worker 127.0.0.2. A cluster yaml made from cluster.yaml (same start commands; setup commands that link the
existing venv instead of cloning), `ray up -y`, a job submitted over HTTP to the head's API (Ray Serve) that must
run on the worker, then `ray down -y`. The store is PostgreSQL, as a cluster's must be: a server of this check's
own (Debian's binaries, a fresh cluster in a temp dir) listening on the head's address, with a role and a
database of its own, named in the head's ~/tork-ray.env; the job's result is read back from that server.
Prints what happened, with times, and a JSON report as its last line.

Why the namespaces: `ray stop` (which cluster.yaml's start commands and `ray down` run) kills every Ray process
it can see; in a PID namespace of its own it sees only this cluster's, and the ports (6379, 8000, ...) are this
namespace's own. When the script ends, everything started in the namespace ends with it.
"""

from __future__ import annotations

import contextlib
import getpass
import glob
import hashlib
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
HEAD, WORKER = "127.0.0.1", "127.0.0.2"
PG_PORT = 5432  # this network namespace's own
IMAGE = os.environ.get("TORK_TEST_IMAGE", "tork-ray-test:latest")
began = time.monotonic()


def say(what: str) -> None:
    print(f"[{time.monotonic() - began:6.1f}s] {what}", flush=True)


def run(*argv: str, env: dict[str, str] | None = None, timeout: float = 600) -> None:
    say("$ " + " ".join(argv))
    subprocess.run(argv, check=True, env=env, timeout=timeout)


def sshd(work: Path, name: str, address: str) -> None:
    home = work / name
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    (home / ".bashrc").write_text("# the ray up check's host home (Ray's commands source ~/.bashrc)\n")
    config = work / f"sshd-{name}.conf"
    config.write_text(
        f"ListenAddress {address}:22\nHostKey {work}/host_key\nAuthorizedKeysFile {work}/authorized_keys\n"
        f"PidFile {work}/sshd-{name}.pid\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        # One home per "host": ~/tork-ray.env, ~/tork_ray and Ray's ~/ray_bootstrap_* are each node's own.
        f"SetEnv HOME={home}\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    # A PID namespace per "host": the `ray stop` of a worker's start commands must not see the head's processes.
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
    argv += ["/usr/sbin/sshd", "-D", "-f", str(config), "-E", str(work / f"sshd-{name}.log")]
    say("$ " + " ".join(argv) + " &")
    subprocess.Popen(argv)
    wait(lambda: _listening(address), 30, f"sshd on {address}:22")


def _listening(address: str) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((address, 22)) == 0


def env_file(work: Path, name: str, lines: dict[str, str]) -> None:
    # What an operator writes on each host (cluster.yaml's header): queues, and here the node's address.
    (work / name / "tork-ray.env").write_text("".join(f"{k}={v}\n" for k, v in lines.items()))


def _pg(program: str) -> str:
    return str(Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]) / program)  # Debian's newest server


def _as_postgres(*argv: str) -> None:
    # The server refuses to run as root: Debian's postgres user runs it (as scripts/ensure-postgres.sh does).
    subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(argv)], check=True, timeout=120)


def start_postgres(password: str) -> tuple[Path, str]:
    """A PostgreSQL server on the head's address: role and database `tork`, password auth over TCP. Returns its
    directory (outside the check's root-only temp dir: the server runs as postgres) and the head's DSN."""
    home = Path(tempfile.mkdtemp(prefix="tork-rayup-pg-"))
    home.chmod(0o755)
    data = home / "data"
    (home / "pw").write_text(password)
    shutil.chown(home / "pw", "postgres")
    data.mkdir()
    shutil.chown(data, "postgres", "postgres")
    t0 = time.monotonic()
    _as_postgres(_pg("initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                 "--auth-host=scram-sha-256", f"--pwfile={home / 'pw'}")  # fmt: skip
    options = f"-p {PG_PORT} -k {data} -c listen_addresses={HEAD} -c fsync=off"
    _as_postgres(_pg("pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-w", "-o", options, "start")
    sql = f"CREATE ROLE tork LOGIN PASSWORD '{password}'; CREATE DATABASE tork OWNER tork;"
    for statement in sql.split("; "):  # psql runs a -c string as one transaction, and CREATE DATABASE can't be in one
        _as_postgres(_pg("psql"), "-q", "-h", str(data), "-p", str(PG_PORT), "-U", "postgres",
                     "-v", "ON_ERROR_STOP=1", "-c", statement.rstrip(";"))  # fmt: skip
    say(f"PostgreSQL on {HEAD}:{PG_PORT} (database tork) in {time.monotonic() - t0:.1f}s")
    return home, f"postgresql+psycopg://tork:{password}@{HEAD}:{PG_PORT}/tork"


def stored_job(dsn: str, job_id: str) -> dict[str, Any]:
    """The job as the head's store holds it: read from the PostgreSQL server, not through the API."""
    sys.path.insert(0, str(ROOT))  # the checkout under test, as the head's PYTHONPATH says
    from tork_ray.store.store import Store

    store = Store(dsn)
    try:
        job, tasks = store.get_job(job_id), store.job_tasks(job_id)
        return {"state": str(job.state) if job else None, "results": [t.result for t in tasks]}
    finally:
        store.close()


def host_envs(work: Path, venv: Path, token: str, dsn: str) -> None:
    common = {
        "PYTHONPATH": str(ROOT),  # the checkout under test, whichever venv runs it
        "RAY_AUTH_MODE": "token",  # a cluster keeps Ray's token auth: one token, given to every host
        "RAY_AUTH_TOKEN": token,
    }
    env_file(
        work,
        "head",
        {
            **common,
            "TORK_RAY_NODE_IP": HEAD,
            "TORK_WORKER_QUEUES_DEFAULT": "0",  # the head runs the coordinator and the API, no tasks
            "TORK_DATA_DIR": str(work / "head" / "data"),
            # The cluster's store: PostgreSQL (cluster mode refuses a SQLite file on one node).
            "TORK_DATASTORE_TYPE": "postgres",
            "TORK_DATASTORE_POSTGRES_DSN": dsn,
            "RAY_TMPDIR": str(work / "head" / "t"),  # Ray's sessions (and `ray stop`'s view) stay in here
            "TORK_RAY_ADDRESS": f"{HEAD}:6379",
        },
    )
    env_file(
        work,
        "worker",
        {
            **common,
            "TORK_RAY_NODE_IP": WORKER,
            "TORK_WORKER_QUEUES_DEFAULT": "2",
            "RAY_TMPDIR": str(work / "worker" / "t"),
        },
    )


def cluster_yaml(work: Path, venv: Path) -> Path:
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    config["cluster_name"] = f"tork-ray-check-{work.name.rsplit('.', 1)[-1]}"
    config["provider"] = {"type": "local", "head_ip": HEAD, "worker_ips": [WORKER]}
    config["auth"] = {"ssh_user": "root", "ssh_private_key": str(work / "id_ed25519")}
    config["min_workers"] = config["max_workers"] = 1
    # The one difference from cluster.yaml: this machine's checkout and venv, linked instead of cloned.
    setup = [c for c in config["setup_commands"] if "git clone" not in c and "make venv" not in c]
    config["setup_commands"] = [f"mkdir -p ~/tork_ray && ln -sfn {venv} ~/tork_ray/.venv", *setup]
    path = work / "cluster.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            last = repr(exc)
        else:
            if last and not isinstance(last, str):
                return last
        time.sleep(1)
    raise SystemExit(f"timed out after {timeout:g}s waiting for {what}; last seen: {last!r}")


def worker_node(http: httpx.Client) -> dict[str, Any] | None:
    nodes = http.get("/nodes").json()
    return next((n for n in nodes if n["name"] == WORKER and n["status"] == "UP" and n["queues"].get("default")), None)


def submit_and_wait(http: httpx.Client) -> dict[str, Any]:
    body = {
        "name": "ray up check",
        "tasks": [{"name": "hello", "image": IMAGE, "run": "echo -n hello from a worker > $TORK_OUTPUT"}],
    }
    job_id = http.post("/jobs", json=body).raise_for_status().json()["id"]
    say(f"job {job_id} submitted")

    def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = http.get(f"/jobs/{job_id}").json()
        return job if job["state"] in ("COMPLETED", "FAILED", "CANCELLED") else None

    return dict(wait(finished, 180, f"job {job_id} to finish"))


def remove_ssh_sockets(cluster_name: str) -> None:
    """Ray's SSH control sockets live in /tmp/ray_ssh_<user>/<cluster> whatever TMPDIR says: remove this run's."""
    user = hashlib.sha256(getpass.getuser().encode()).hexdigest()[:10]
    ours = Path(f"/tmp/ray_ssh_{user}") / hashlib.sha256(cluster_name.encode()).hexdigest()[:10]
    shutil.rmtree(ours, ignore_errors=True)
    with contextlib.suppress(OSError):
        ours.parent.rmdir()  # only if no other cluster's sockets are there


def check(work: Path, venv: Path, dsn: str) -> dict[str, Any]:
    report: dict[str, Any] = {}
    ray = str(venv / "bin" / "ray")
    client = str(work / "client")  # `ray up`'s own files (config cache, ...) stay in here too
    env = {**os.environ, "HOME": client, "TMPDIR": client, "RAY_TMPDIR": client}
    config = cluster_yaml(work, venv)
    t0 = time.monotonic()
    run(ray, "up", "-y", "--no-config-cache", str(config), env=env)
    report["rayUpSeconds"] = round(time.monotonic() - t0, 1)
    try:
        with httpx.Client(base_url=f"http://{HEAD}:8000", timeout=30) as http:
            report["health"] = wait(lambda: http.get("/health").json(), 120, "the API on the head")["status"]
            say(f"API answers on the head: {report['health']}")
            # Under load a worker's `ray start` can time out and is tried again (cluster.yaml): be patient.
            worker = wait(lambda: worker_node(http), 480, "the worker node (127.0.0.2) serving queue default")
            report["workerJoinedSeconds"] = round(time.monotonic() - t0, 1)
            say(f"worker joined: {worker['id']} queues {worker['queues']}")
            t1 = time.monotonic()
            job = submit_and_wait(http)
            report["jobSeconds"] = round(time.monotonic() - t1, 1)
            task = job["execution"][0]
            report.update(job=job["state"], result=task.get("result"), error=task.get("error"))
            report.update(taskNode=task.get("nodeId"), workerNode=worker["id"])
            say(f"job {job['state']}: {task.get('result')!r} on node {task.get('nodeId')}")
            report["stored"] = stored_job(dsn, job["id"])
            say(f"in PostgreSQL on {HEAD}:{PG_PORT}: {report['stored']}")
    finally:
        t2 = time.monotonic()
        run(ray, "down", "-y", str(config), env=env)
        report["rayDownSeconds"] = round(time.monotonic() - t2, 1)
        remove_ssh_sockets(yaml.safe_load(config.read_text())["cluster_name"])
    report["ok"] = report.get("job") == "COMPLETED" and report.get("taskNode") == report.get("workerNode")
    report["ok"] &= report.get("stored") == {"state": "COMPLETED", "results": [report.get("result")]}
    return report


def head_is_roots_home(work: Path) -> None:
    """Inside this mount namespace only, root's home (passwd) is the head's: ssh expands the `~` of Ray's
    `-i ~/ray_bootstrap_key.pem` from passwd, not $HOME, and on a real head the two agree."""
    lines = Path("/etc/passwd").read_text().splitlines(keepends=True)
    fields = [line.split(":") for line in lines]
    changed = [":".join([*f[:5], str(work / "head"), *f[6:]]) if f[0] == "root" else ":".join(f) for f in fields]
    (work / "passwd").write_text("".join(changed))
    subprocess.run(["mount", "--bind", str(work / "passwd"), "/etc/passwd"], check=True)


def main(work: Path, venv: Path) -> int:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    head_is_roots_home(work)
    for name, address in (("head", HEAD), ("worker", WORKER)):
        sshd(work, name, address)
    (work / "client").mkdir(exist_ok=True)
    pg_home, dsn = start_postgres(secrets.token_hex(16))
    try:
        host_envs(work, venv, secrets.token_hex(32), dsn)
        report = check(work, venv, dsn)
    finally:  # the server dies with the namespace anyway: stopped here so its directory can go
        with contextlib.suppress(subprocess.SubprocessError):
            _as_postgres(_pg("pg_ctl"), "-D", str(pg_home / "data"), "-m", "immediate", "stop")
        shutil.rmtree(pg_home, ignore_errors=True)
    print(json.dumps(report), flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
