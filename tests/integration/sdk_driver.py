"""Run as a script by tests/integration/test_sdk.py: a Ray driver of its own, connected to the session's Ray
cluster (argv[1]: its address), that submits a job with tork_ray.submit() and no URL, and prints the answer."""

from __future__ import annotations

import json
import sys

import ray

import tork_ray


def main(address: str, document: str) -> None:
    ray.init(address=address, log_to_driver=False, configure_logging=False)
    try:
        job = tork_ray.submit(document, wait=True, timeout=120)
        print(json.dumps({"id": job.id, "state": job.state, "lines": [t.result for t in job.execution]}))
    except tork_ray.JobFailed as exc:
        print(json.dumps({"failed": exc.job.id, "state": exc.job.state, "error": exc.job.error}))
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
