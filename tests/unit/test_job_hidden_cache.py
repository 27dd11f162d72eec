"""JobHiddenCache (store/logguard.py): one read per job, a save drops the kept value, and a value read while
its job was being saved is not kept (it may be the row as it was before the commit)."""

from __future__ import annotations

from collections import Counter

from tork_ray.store.logguard import JobHiddenCache


class Reads:
    """The store's read, counted; `during` runs inside the next read (a save committing meanwhile)."""

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.values: dict[str, list[str]] = {"j1": ["one"], "j2": ["two"], "j3": ["three"]}
        self.during: list[object] = []

    def __call__(self, job_id: str) -> list[str] | None:
        self.count[job_id] += 1
        found = self.values.get(job_id)
        while self.during:
            action = self.during.pop()
            assert callable(action)
            action()
        return found


def test_a_job_is_read_once_until_it_is_saved() -> None:
    reads = Reads()
    cache = JobHiddenCache(reads)
    assert [cache.get("j1") for _ in range(3)] == [["one"]] * 3
    assert reads.count["j1"] == 1
    reads.values["j1"] = ["one", "more"]
    cache.invalidate(["j1"])
    assert cache.get("j1") == ["one", "more"] and reads.count["j1"] == 2


def test_an_unknown_job_is_not_kept() -> None:
    reads = Reads()
    cache = JobHiddenCache(reads)
    assert cache.get("nope") is None and cache.get("nope") is None
    assert reads.count["nope"] == 2


def test_a_value_read_while_its_job_is_saved_is_not_kept() -> None:
    reads = Reads()
    cache = JobHiddenCache(reads)
    reads.during.append(lambda: cache.invalidate(["j1"]))
    assert cache.get("j1") == ["one"]  # this caller gets what it read...
    assert cache.get("j1") == ["one"]
    assert reads.count["j1"] == 2  # ...but the next one reads again
    assert cache.get("j1") == ["one"] and reads.count["j1"] == 2  # and that read, undisturbed, is kept


def test_a_save_of_another_job_does_not_spoil_a_read() -> None:
    reads = Reads()
    cache = JobHiddenCache(reads)
    reads.during.append(lambda: cache.invalidate(["j2"]))
    cache.get("j1")
    cache.get("j1")
    assert reads.count["j1"] == 1


def test_a_failed_read_keeps_nothing_and_leaves_no_trace() -> None:
    def broken(job_id: str) -> list[str] | None:
        raise OSError("store away")

    cache = JobHiddenCache(broken)
    for _ in range(2):
        try:
            cache.get("j1")
        except OSError:
            pass
        else:
            raise AssertionError("the read's error was swallowed")
    assert not cache._reading and not cache._saved_during_read


def test_the_least_recently_used_job_leaves_first() -> None:
    reads = Reads()
    cache = JobHiddenCache(reads, capacity=2)
    cache.get("j1")
    cache.get("j2")
    cache.get("j1")  # j1 used last: j2 leaves when j3 comes
    cache.get("j3")
    cache.get("j1")
    cache.get("j2")
    assert reads.count == Counter({"j1": 1, "j2": 2, "j3": 1})
