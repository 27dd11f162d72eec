"""The cron scheduler over a real store (SQLite, and PostgreSQL where it matters), with a clock the test moves:
each tick rule, pause/resume, delete, restarts around a tick, two coordinators racing, and catch-up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.postgres import fresh_database
from tork_ray.coordinator.engine import Engine
from tork_ray.coordinator.scheduler import Scheduler
from tork_ray.coordinator.schedules import ScheduledJobs
from tork_ray.coordinator.writer import StateWriter
from tork_ray.domain.models import Job, Task
from tork_ray.domain.schedules import ScheduledJob, ScheduleState, new_scheduled_job
from tork_ray.domain.states import JobState
from tork_ray.errors import Conflict, NotFound
from tork_ray.spec import parse_scheduled_job
from tork_ray.spec.cron import parse_cron
from tork_ray.store import schedules as sql
from tork_ray.store.store import Store

T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)  # a Monday
NEVER = "0 0 1 1 *"  # not within any test's clock
pytestmark = pytest.mark.anyio  # the async tests run on asyncio (anyio's pytest plugin, installed with anyio)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeClock:
    """The test's time: moved by hand (`at`) or by the scheduler's own sleeps, never by waiting."""

    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def at(self, moment: datetime) -> FakeClock:
        self.current = moment
        return self

    async def sleep(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)
        await asyncio.sleep(0)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Every test runs on both stores: the exactly-once rule is SQL, and the two databases lock differently."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'tork.db'}"
        else:
            url = stack.enter_context(fresh_database("tork_sched"))
        store = Store(url, encryption_key="scheduler test key")
        yield store
        store.close()


def scheduled(store: Store, cron: str, created: datetime, **extra: Any) -> ScheduledJob:
    """A scheduled job stored as POST /scheduled-jobs stores it, created at `created`."""
    doc = {
        "name": "nightly",
        "tags": ["cron"],
        "inputs": {"who": "world"},
        "secrets": {"token": "s3cr3t-value"},
        "defaults": {"queue": "slow", "retry": {"limit": 2}},
        "permissions": [{"user": "someone"}],
        "schedule": {"cron": cron},
        "tasks": [{"name": "hello", "image": "alpine", "run": "echo {{ job.id }}"}],
        **extra,
    }
    made = new_scheduled_job(parse_scheduled_job(json.dumps(doc).encode(), "application/json"), None, created)
    sql.insert_scheduled_job(store, made)
    return made


def scheduler(store: Store, clock: FakeClock, started: list[Job] | None = None, **kwargs: Any) -> Scheduler:
    sink = started if started is not None else []
    return Scheduler(store, sink.append, clock=clock, **kwargs)


def instances(store: Store, scheduled_id: str) -> list[Job]:
    jobs = [store.get_job(job_id) for job_id in sql.instance_ids(store, scheduled_id)]
    return [job for job in jobs if job is not None]


def mark(store: Store, scheduled_id: str) -> datetime:
    found = sql.get_scheduled_job(store, scheduled_id)
    assert found is not None
    return found.last_fired


async def fire_at(s: Scheduler, clock: FakeClock, moment: datetime) -> list[Job]:
    clock.at(moment)
    return await s.run_due()


# --- tick rules ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "created", "first"),
    [
        ("*/15 * * * *", T0 + timedelta(minutes=2), T0 + timedelta(minutes=15)),
        ("30 14 * * 1-5", T0, T0.replace(hour=14, minute=30)),
        ("0 0 1 * *", T0, datetime(2026, 4, 1, tzinfo=UTC)),
        ("@hourly", T0 + timedelta(minutes=2), T0 + timedelta(hours=1)),
        ("@daily", T0, T0.replace(hour=0) + timedelta(days=1)),
        ("@midnight", T0, T0.replace(hour=0) + timedelta(days=1)),
        ("@weekly", T0, datetime(2026, 3, 8, tzinfo=UTC)),  # the next Sunday
        ("@monthly", T0, datetime(2026, 4, 1, tzinfo=UTC)),
        ("@yearly", T0, datetime(2027, 1, 1, tzinfo=UTC)),
        ("@annually", T0, datetime(2027, 1, 1, tzinfo=UTC)),
        ("@every 90s", T0 + timedelta(microseconds=400_000), T0 + timedelta(seconds=90)),
        ("@every 1m30s", T0, T0 + timedelta(seconds=90)),
        ("CRON_TZ=America/New_York 0 9 * * *", T0, T0.replace(hour=14)),  # 09:00 EST is 14:00 UTC
        ("TZ=Asia/Tokyo @daily", T0, T0.replace(hour=15)),  # midnight in Tokyo is 15:00 UTC
    ],
)
async def test_each_rule_fires_its_first_tick_then_the_next(
    store: Store, cron: str, created: datetime, first: datetime
) -> None:
    made = scheduled(store, cron, created)
    clock = FakeClock(created)
    s = scheduler(store, clock)
    await s.load()
    assert await fire_at(s, clock, first - timedelta(seconds=1)) == []
    [job] = await fire_at(s, clock, first)
    assert mark(store, made.id) == first
    assert await fire_at(s, clock, first + timedelta(seconds=1)) == []  # the same tick never fires twice
    second = made.model_copy(update={"last_fired": first})
    nxt = await fire_at(s, clock, _next_tick(second, first))
    assert len(nxt) == 1 and mark(store, made.id) > first
    assert [j.id for j in sorted(instances(store, made.id), key=lambda j: j.created_at)] == [job.id, nxt[0].id]


def _next_tick(made: ScheduledJob, after: datetime) -> datetime:
    return parse_cron(made.cron).next_after(after)


async def test_an_instance_is_a_normal_pending_job_with_the_scheduled_fields(store: Store) -> None:
    made = scheduled(store, "@every 1m", T0, description="d", output="{{ inputs.who }}", autoDelete={"after": "1h"})
    clock, started = FakeClock(T0), []
    s = scheduler(store, clock, started)
    await s.load()
    [job] = await fire_at(s, clock, T0 + timedelta(minutes=1))
    assert [j.id for j in started] == [job.id]  # handed to the engine to start, as a submitted job
    stored = store.get_job(job.id)
    assert stored is not None and stored.state is JobState.PENDING
    assert stored.schedule == {"id": made.id}
    assert (stored.name, stored.description, stored.tags, stored.output) == ("nightly", "d", ["cron"], made.output)
    assert stored.inputs == {"who": "world"} and stored.secrets == {"token": "s3cr3t-value"}
    assert stored.defaults == {"queue": "slow", "retry": {"limit": 2}}  # Decisions Q8: defaults kept
    assert stored.context["job"] == {"id": job.id, "name": "nightly"}  # ... and the job namespace
    assert stored.permissions == [{"user": "someone"}] and stored.auto_delete == {"after": "1h"}
    assert stored.tasks == made.tasks and stored.task_count == 1
    assert stored.created_by.username == "guest"
    # At rest, the scheduled job's document (its secrets) is sealed, like a job's.
    with store.engine.connect() as connection:
        doc = connection.execute(text("SELECT doc FROM scheduled_jobs WHERE id = :id"), {"id": made.id}).scalar_one()
    assert "s3cr3t-value" not in str(doc) and "enc:v1:" in str(doc)
    # A tag search finds instances like any job.
    assert [j.id for j in store.list_jobs(1, 10, "tag:cron")[0]] == [job.id]


async def test_cron_tz_follows_the_dst_change(store: Store) -> None:
    """09:00 in Berlin is 08:00 UTC before 29 March 2026 and 07:00 UTC after; the day of the change fires once."""
    created = datetime(2026, 3, 27, 12, tzinfo=UTC)
    made = scheduled(store, "CRON_TZ=Europe/Berlin 0 9 * * *", created)
    clock = FakeClock(created)
    s = scheduler(store, clock)
    await s.load()
    assert len(await fire_at(s, clock, datetime(2026, 3, 28, 8, tzinfo=UTC))) == 1  # CET
    assert await fire_at(s, clock, datetime(2026, 3, 29, 6, 59, 59, tzinfo=UTC)) == []
    assert len(await fire_at(s, clock, datetime(2026, 3, 29, 7, tzinfo=UTC))) == 1  # CEST
    assert mark(store, made.id) == datetime(2026, 3, 29, 7, tzinfo=UTC)
    assert await fire_at(s, clock, datetime(2026, 3, 29, 8, tzinfo=UTC)) == []  # not again at the old hour
    # A time the change skips (02:30 on 29 March does not exist in Berlin) fires once, just after the change.
    skipped = scheduled(store, "CRON_TZ=Europe/Berlin 30 2 * * *", datetime(2026, 3, 28, 12, tzinfo=UTC))
    s.register(skipped)
    assert await fire_at(s, clock, datetime(2026, 3, 29, 0, 59, tzinfo=UTC)) == []
    assert len(await fire_at(s, clock, datetime(2026, 3, 29, 1, 0, tzinfo=UTC))) == 1
    assert len(instances(store, skipped.id)) == 1


async def test_a_time_repeated_when_clocks_go_back_fires_once(store: Store) -> None:
    """02:30 happens twice in Berlin on 25 October 2026 (00:30 and 01:30 UTC): one job, as Debian's cron (Tork's
    robfig/cron makes two)."""
    made = scheduled(store, "CRON_TZ=Europe/Berlin 30 2 * * *", datetime(2026, 10, 24, 12, tzinfo=UTC))
    clock = FakeClock(datetime(2026, 10, 24, 12, tzinfo=UTC))
    s = scheduler(store, clock)
    await s.load()
    assert len(await fire_at(s, clock, datetime(2026, 10, 25, 0, 30, tzinfo=UTC))) == 1  # 02:30 CEST
    assert await fire_at(s, clock, datetime(2026, 10, 25, 1, 30, tzinfo=UTC)) == []  # 02:30 CET: not again
    assert len(await fire_at(s, clock, datetime(2026, 10, 26, 1, 30, tzinfo=UTC))) == 1  # the next day's
    assert len(instances(store, made.id)) == 2


# --- pause, resume, delete -----------------------------------------------------------------------------------


def engine_over(store: Store) -> Engine:
    def launch(_request: Any, _resource: str) -> Any:  # the instances here never get as far as a task
        raise AssertionError("no task is launched in these tests")

    return Engine(StateWriter(store), launch, scope="scheduler-test")


async def test_pause_stops_ticks_and_resume_starts_from_the_next_one(store: Store) -> None:
    made = scheduled(store, "*/5 * * * *", T0)
    clock = FakeClock(T0)
    s = scheduler(store, clock)
    service = ScheduledJobs(store, engine_over(store), s, off_loop=_in_thread)
    await s.load()
    assert len(await fire_at(s, clock, T0 + timedelta(minutes=5))) == 1
    await service.pause(made.id, "req-pause")
    await service.pause(made.id, "req-pause")  # a retry of the same call: already applied, OK
    with pytest.raises(Conflict, match="scheduled job is not active"):
        await service.pause(made.id, None)
    assert await fire_at(s, clock, T0 + timedelta(minutes=20)) == []  # three ticks while paused: none
    clock.at(T0 + timedelta(minutes=21, microseconds=123_456))  # the mark, stored in ms, must still compare equal
    await service.resume(made.id, "req-resume")
    with pytest.raises(Conflict, match="scheduled job is not paused"):
        await service.resume(made.id, None)
    assert await fire_at(s, clock, T0 + timedelta(minutes=24)) == []  # no catch-up for the paused ticks
    assert len(await fire_at(s, clock, T0 + timedelta(minutes=25))) == 1
    assert len(instances(store, made.id)) == 2
    with pytest.raises(NotFound, match="scheduled job not found"):
        await service.pause("0" * 32, None)


async def test_a_pause_by_another_coordinator_stops_the_next_tick(store: Store) -> None:
    """The scheduler's memory says ACTIVE, the store says PAUSED: the store wins (fire's UPDATE checks it)."""
    made = scheduled(store, "@every 10s", T0)
    clock = FakeClock(T0)
    s = scheduler(store, clock)
    await s.load()
    assert sql.change_state(store, made.id, ScheduleState.ACTIVE, ScheduleState.PAUSED)
    assert await fire_at(s, clock, T0 + timedelta(seconds=10)) == []
    assert s.registered() == set() and instances(store, made.id) == []


async def test_delete_removes_the_scheduled_job_and_all_its_instances(store: Store) -> None:
    made = scheduled(store, "@every 10s", T0)
    other = scheduled(store, "@every 10s", T0)
    clock = FakeClock(T0)
    s = scheduler(store, clock)
    service = ScheduledJobs(store, engine_over(store), s, off_loop=_in_thread)
    await s.load()
    first = await fire_at(s, clock, T0 + timedelta(seconds=10))
    second = await fire_at(s, clock, T0 + timedelta(seconds=20))
    mine = [job for job in first + second if job.schedule == {"id": made.id}]
    assert len(mine) == 2
    # One instance ran a task that logged (a finished job); the other is still PENDING (active: cancelled first).
    done = store.get_job(mine[0].id)
    assert done is not None
    task = Task(job_id=done.id, position=1, name="hello")
    store.save(jobs=[done.model_copy(update={"state": JobState.CANCELLED})], tasks=[task])
    store.append_log(task.id, "a line\n")
    await service.delete(made.id, "req-delete")
    await service.delete(made.id, "req-delete")  # a retry of the same call: OK
    assert sql.get_scheduled_job(store, made.id) is None
    assert all(store.get_job(job.id) is None for job in mine)
    assert store.get_task(task.id) is None and store.job_log(done.id, 1, 10)[1] == 0
    assert sql.instance_ids(store, made.id) == []
    assert len(instances(store, other.id)) == 2  # the other scheduled job's instances stay
    assert await fire_at(s, clock, T0 + timedelta(seconds=30)) != []  # ... and it keeps firing
    assert made.id not in s.registered()
    with pytest.raises(NotFound, match="scheduled job not found"):
        await service.delete(made.id, None)


async def _in_thread(function: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(function, *args)


# --- exactly once: restarts and races ---------------------------------------------------------------------


async def test_a_restart_after_the_tick_fired_does_not_fire_it_again(store: Store) -> None:
    made = scheduled(store, "*/5 * * * *", T0)
    clock = FakeClock(T0)
    first = scheduler(store, clock)
    await first.load()
    assert len(await fire_at(first, clock, T0 + timedelta(minutes=5))) == 1
    # The coordinator dies just after the commit (before starting the job: recovery starts PENDING jobs);
    # a new one loads the schedule seconds later.
    clock.at(T0 + timedelta(minutes=5, seconds=3))
    second = scheduler(store, clock)
    await second.load()
    assert await second.run_due() == []
    assert len(instances(store, made.id)) == 1


async def test_a_restart_before_the_commit_fires_the_tick_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A coordinator that dies inside the tick's transaction stores nothing (not even the mark); the next one
    fires that tick, once."""
    made = scheduled(store, "*/5 * * * *", T0)
    clock = FakeClock(T0 + timedelta(minutes=5))
    dying = scheduler(store, clock)
    await dying.load()

    def crash(_job: Job) -> dict[str, Any]:
        raise KeyboardInterrupt("the coordinator died mid-transaction")

    monkeypatch.setattr(sql, "job_values", crash)
    with pytest.raises(KeyboardInterrupt):
        await dying.run_due()
    monkeypatch.undo()
    assert instances(store, made.id) == [] and mark(store, made.id) == T0
    reborn = scheduler(store, clock)
    await reborn.load()
    assert len(await reborn.run_due()) == 1
    assert await reborn.run_due() == []
    assert len(instances(store, made.id)) == 1


def racing_off_loop(parties: int) -> Callable[..., Awaitable[Any]]:
    """Runs store work in threads; the `fire` calls of `parties` schedulers meet at a barrier first, so that
    they really run at the same moment."""
    barrier = threading.Barrier(parties, timeout=30)

    async def off_loop(function: Callable[..., Any], *args: Any) -> Any:
        def call() -> Any:
            if function is sql.fire:
                barrier.wait()
            return function(*args)

        return await asyncio.to_thread(call)

    return off_loop


async def two_coordinators_race(store: Store, ticks: int) -> None:
    made = scheduled(store, "@every 1m", T0)
    clock = FakeClock(T0)
    off_loop = racing_off_loop(2)
    racers = [scheduler(store, clock, off_loop=off_loop) for _ in range(2)]
    for racer in racers:
        await racer.load()
    for n in range(1, ticks + 1):
        clock.at(T0 + timedelta(minutes=n))
        made_now = await asyncio.gather(*(racer.run_due() for racer in racers))
        assert sum(len(jobs) for jobs in made_now) == 1, f"tick {n}: {[len(jobs) for jobs in made_now]} jobs"
    assert len(instances(store, made.id)) == ticks
    assert mark(store, made.id) == T0 + timedelta(minutes=ticks)


async def test_two_coordinators_firing_the_same_tick_make_one_job(store: Store) -> None:
    await two_coordinators_race(store, ticks=10)


# --- catch-up and pile-up ---------------------------------------------------------------------------------


async def test_down_over_three_ticks_makes_exactly_one_catch_up_job(store: Store) -> None:
    made = scheduled(store, "*/5 * * * *", T0)
    clock = FakeClock(T0)
    before = scheduler(store, clock)
    await before.load()
    assert len(await fire_at(before, clock, T0 + timedelta(minutes=5))) == 1
    # Down from 10:06 to 10:22: the ticks of 10:10, 10:15 and 10:20 were missed.
    clock.at(T0 + timedelta(minutes=22))
    after = scheduler(store, clock)
    await after.load()
    assert len(await after.run_due()) == 1  # the catch-up
    assert mark(store, made.id) == T0 + timedelta(minutes=20)  # the latest missed tick
    assert await after.run_due() == []
    assert len(await fire_at(after, clock, T0 + timedelta(minutes=25))) == 1  # then on schedule
    assert len(instances(store, made.id)) == 3


async def test_the_timer_loop_does_not_pile_up_when_a_job_takes_longer_than_the_period(store: Store) -> None:
    """@every 1s, and each job takes 3 s (of the test's clock) to hand over: one job per check, for the latest
    tick, never a backlog of the ticks that passed meanwhile."""
    made = scheduled(store, "@every 1s", T0)
    clock = FakeClock(T0)
    started: list[Job] = []

    ten = asyncio.Event()
    looping = True

    def slow_start(job: Job) -> None:
        started.append(job)
        if looping:  # once the loop is stopped the clock stands still: the checks below are "at this moment"
            clock.current += timedelta(seconds=3)
        if len(started) >= 10:
            ten.set()

    s = Scheduler(store, slow_start, clock=clock)
    loop = asyncio.create_task(s.run())
    try:
        await asyncio.wait_for(ten.wait(), timeout=60)
    finally:
        loop.cancel()
        looping = False
    elapsed = (clock.now() - T0).total_seconds()
    count = len(started)  # the store may hold one more: a fire the cancel cut off after its commit
    assert len(instances(store, made.id)) in (count, count + 1)
    print(f"\n@every 1s with 3 s per job: {count} jobs over {elapsed:.0f} s of clock")
    assert count >= 10
    assert elapsed >= 3 * count  # each job's 3 s passed ...
    assert count <= elapsed / 3 + 1  # ... and no job was made for the ticks inside them
    # No backlog is owed either: the mark has caught up with the clock, so checks at this moment fire no more.
    assert clock.now() - mark(store, made.id) <= timedelta(seconds=3)
    await s.run_due()
    assert await s.run_due() == []


# --- permissions (stored here; the auth area checks them) ----------------------------------------------------


def test_permissions_are_stored_for_an_access_filter_in_sql(store: Store) -> None:
    open_to_all = scheduled(store, NEVER, T0, permissions=[])
    for_ann = scheduled(store, NEVER, T0 + timedelta(seconds=1), permissions=[{"user": "ann"}])
    for_ops = scheduled(store, NEVER, T0 + timedelta(seconds=2), permissions=[{"role": "ops"}, {"user": "bob"}])

    def ids(viewer: Any) -> list[str]:
        items, total = sql.list_scheduled_jobs(store, 1, 10, viewer)
        assert total == len(items)
        return [item.id for item in items]

    assert ids(None) == [for_ops.id, for_ann.id, open_to_all.id]  # no viewer (auth off): everything
    assert ids(("ann", [])) == [for_ann.id, open_to_all.id]
    assert ids(("bob", [])) == [for_ops.id, open_to_all.id]
    assert ids(("cat", ["ops", "dev"])) == [for_ops.id, open_to_all.id]
    assert ids(("cat", [])) == [open_to_all.id]
    stored = sql.get_scheduled_job(store, for_ops.id)
    assert stored is not None and stored.permissions == [{"role": "ops"}, {"user": "bob"}]
    sql.finish_delete(store, for_ops.id, [])
    assert ids(("bob", [])) == [open_to_all.id]
