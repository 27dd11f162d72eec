"""Full-text search: SQLite FTS5 (porter stemming) on the embedded store, tsvector + GIN on PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, distinct, func, text
from sqlalchemy.sql.elements import ColumnElement, TextClause
from sqlmodel import Session, col, select

from tork_ray.store.tables import JobRow, JobTagRow

# PostgreSQL's `english` stop words (snowball): dropped from queries on both stores, so that a search means
# the same on SQLite as plainto_tsquery('english', ...) does on PostgreSQL.
_STOP_TEXT = """a about above after again against all am an and any are as at be because been before being below
    between both but by can did do does doing don down during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor
    not now of off on once only or other our ours ourselves out over own s same she should so some such t than
    that the their theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom why will with you your yours yourself yourselves"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class JobQuery:
    """`q` of GET /jobs: words (all must match, stemmed) and tags (a job matches if it has any of them)."""

    words: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


def parse_query(q: str | None) -> JobQuery:
    words: list[str] = []
    tags: list[str] = []
    for term in (q or "").split():
        if term.startswith("tag:"):
            tags.append(term[len("tag:") :])
        elif term.startswith("tags:"):
            tags.extend(tag for tag in term[len("tags:") :].split(","))
        else:
            words.extend(w for w in _WORD.findall(term.lower()) if w not in STOP_WORDS)
    return JobQuery(tuple(dict.fromkeys(words)), tuple(dict.fromkeys(t for t in tags if t)))


def log_words(q: str | None) -> tuple[str, ...]:
    return parse_query(q).words if q and q.strip() else ()


def tag_filter(tags: tuple[str, ...]) -> ColumnElement[bool]:
    return col(JobRow.id).in_(select(JobTagRow.job_id).where(col(JobTagRow.tag).in_(tags)))


class SearchDialect:
    """What differs between the stores: the index DDL, the predicates that match words, and the fastest way
    to page through matches. The generic `find_jobs` works on both; SQLite overrides it for speed."""

    def install(self, connection: Connection) -> None:
        raise NotImplementedError

    def job_match(self, words: tuple[str, ...]) -> TextClause:
        raise NotImplementedError

    def log_match(self, words: tuple[str, ...], task_id: str | None) -> TextClause:
        raise NotImplementedError

    def find_jobs(
        self, session: Session, query: JobQuery, page: int, size: int, *extra: ColumnElement[bool]
    ) -> tuple[list[str], int]:
        """Ids of one page of matching jobs, newest first, and how many match in all; `extra` filters too
        (the caller's visibility)."""
        filters: list[Any] = list(extra)
        if query.words:
            filters.append(self.job_match(query.words))
        if query.tags:
            filters.append(tag_filter(query.tags))
        total = session.exec(select(func.count()).select_from(JobRow).where(*filters)).one()
        ids = session.exec(
            select(JobRow.id).where(*filters).order_by(*self.newest_first()).offset((page - 1) * size).limit(size)
        ).all()
        return list(ids), int(total)

    def newest_first(self) -> tuple[Any, ...]:
        return (col(JobRow.created_at).desc(), col(JobRow.id).desc())


def _fts_phrases(words: tuple[str, ...]) -> str:
    # Each word is \w+, so quoting makes it a plain FTS5 string: no operator or column filter can be injected.
    return " ".join(f'"{word}"' for word in words)


class SqliteSearch(SearchDialect):
    """External-content FTS5 tables kept in step by triggers, so every write path (the coordinator's saves,
    bulk imports, retention's deletes) updates the index with no extra code. The index maps the content
    tables' rowids: after a VACUUM run `INSERT INTO jobs_fts(jobs_fts) VALUES('rebuild')` (and log_fts)."""

    DDL = (
        "CREATE VIRTUAL TABLE IF NOT EXISTS jobs_fts USING fts5("
        "state, name, description, content='jobs', tokenize='porter unicode61')",
        "CREATE TRIGGER IF NOT EXISTS jobs_fts_ai AFTER INSERT ON jobs BEGIN "
        "INSERT INTO jobs_fts(rowid, state, name, description) VALUES (new.rowid, new.state, new.name, "
        "new.description); END",
        "CREATE TRIGGER IF NOT EXISTS jobs_fts_ad AFTER DELETE ON jobs BEGIN "
        "INSERT INTO jobs_fts(jobs_fts, rowid, state, name, description) VALUES ('delete', old.rowid, old.state, "
        "old.name, old.description); END",
        # The coordinator's upserts set every column: only a real change of an indexed one re-indexes.
        "DROP TRIGGER IF EXISTS jobs_fts_au",
        "CREATE TRIGGER jobs_fts_au AFTER UPDATE OF state, name, description ON jobs "
        "WHEN old.state IS NOT new.state OR old.name IS NOT new.name OR old.description IS NOT new.description "
        "BEGIN "
        "INSERT INTO jobs_fts(jobs_fts, rowid, state, name, description) VALUES ('delete', old.rowid, old.state, "
        "old.name, old.description); "
        "INSERT INTO jobs_fts(rowid, state, name, description) VALUES (new.rowid, new.state, new.name, "
        "new.description); END",
        # task_id is indexed too, so `task_id:"<id>" AND contents:(...)` intersects two posting lists instead
        # of scanning every match of a common word across all tasks.
        "CREATE VIRTUAL TABLE IF NOT EXISTS log_fts USING fts5("
        "task_id, contents, content='tasks_log_parts', tokenize='porter unicode61')",
        "CREATE TRIGGER IF NOT EXISTS log_fts_ai AFTER INSERT ON tasks_log_parts BEGIN "
        "INSERT INTO log_fts(rowid, task_id, contents) VALUES (new.rowid, new.task_id, new.contents); END",
        "CREATE TRIGGER IF NOT EXISTS log_fts_ad AFTER DELETE ON tasks_log_parts BEGIN "
        "INSERT INTO log_fts(log_fts, rowid, task_id, contents) VALUES ('delete', old.rowid, old.task_id, "
        "old.contents); END",
    )

    def install(self, connection: Connection) -> None:
        existing = {
            row[0]
            for row in connection.execute(
                text("SELECT name FROM sqlite_master WHERE name IN ('jobs_fts', 'log_fts')")
            ).all()
        }
        for statement in self.DDL:
            connection.execute(text(statement))
        # A store created before the index existed: index what is already there, once.
        for table in ("jobs_fts", "log_fts"):
            if table not in existing:
                connection.execute(text(f"INSERT INTO {table}({table}) VALUES ('rebuild')"))

    def job_match(self, words: tuple[str, ...]) -> TextClause:
        return text("jobs.rowid IN (SELECT rowid FROM jobs_fts WHERE jobs_fts MATCH :job_words)").bindparams(
            job_words=_fts_phrases(words)
        )

    def newest_first(self) -> tuple[Any, ...]:
        # The coordinator inserts each job as it creates it, so insertion (rowid) order is creation order;
        # FTS5 walks its posting lists in rowid order, so this order needs no sort of the matches.
        return (text("jobs.rowid DESC"),)

    def find_jobs(
        self, session: Session, query: JobQuery, page: int, size: int, *extra: ColumnElement[bool]
    ) -> tuple[list[str], int]:
        """Words alone are answered from the FTS index only (count and page: a few ms on 100,000 jobs, where
        joining every match to `jobs` first costs tens); tags alone from the (tag, created_at) index. With
        `extra` filters (a caller's visibility) the generic query, which joins them."""
        if extra:
            return super().find_jobs(session, query, page, size, *extra)
        offset = (page - 1) * size
        if query.words and not query.tags:
            match = {"m": _fts_phrases(query.words)}
            total = session.execute(text("SELECT count(*) FROM jobs_fts WHERE jobs_fts MATCH :m"), match).scalar()
            ids = session.execute(
                text(
                    "SELECT jobs.id FROM jobs WHERE jobs.rowid IN (SELECT rowid FROM jobs_fts WHERE jobs_fts "
                    "MATCH :m ORDER BY rowid DESC LIMIT :size OFFSET :offset) ORDER BY jobs.rowid DESC"
                ),
                {**match, "size": size, "offset": offset},
            ).scalars()
            return list(ids), int(total or 0)
        if query.tags and not query.words:
            tagged = col(JobTagRow.tag).in_(query.tags)
            # One row per (job, tag): with one tag a plain count is exact and needs no DISTINCT sort.
            counted = func.count() if len(query.tags) == 1 else func.count(distinct(col(JobTagRow.job_id)))
            total = session.exec(select(counted).where(tagged)).one()
            # No DISTINCT (it sorts every match): a job appears at most once per tag asked for, so the first
            # (offset + size) * len(tags) rows of the index hold the page, and duplicates are dropped here.
            rows = session.exec(
                select(JobTagRow.job_id)
                .where(tagged)
                .order_by(col(JobTagRow.created_at).desc(), col(JobTagRow.job_id).desc())
                .limit((offset + size) * len(query.tags))
            ).all()
            return list(dict.fromkeys(rows))[offset : offset + size], int(total)
        return super().find_jobs(session, query, page, size)

    def log_match(self, words: tuple[str, ...], task_id: str | None) -> TextClause:
        match = f"contents : ({_fts_phrases(words)})"
        if task_id is not None:
            # Doubling quotes keeps any id a plain FTS5 string (ids come from the store, but be strict anyway).
            quoted = task_id.replace('"', '""')
            match = f'task_id : "{quoted}" AND {match}'
        return text("tasks_log_parts.rowid IN (SELECT rowid FROM log_fts WHERE log_fts MATCH :log_words)").bindparams(
            log_words=match
        )


class PostgresSearch(SearchDialect):
    """Tork's own schema: generated tsvector columns (state A, name B, description C) with GIN indexes."""

    DDL = (
        "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS ts tsvector GENERATED ALWAYS AS ("
        "setweight(to_tsvector('english', coalesce(state, '')), 'A') || "
        "setweight(to_tsvector('english', coalesce(name, '')), 'B') || "
        "setweight(to_tsvector('english', coalesce(description, '')), 'C')) STORED",
        "CREATE INDEX IF NOT EXISTS ix_jobs_ts ON jobs USING GIN (ts)",
        "ALTER TABLE tasks_log_parts ADD COLUMN IF NOT EXISTS ts tsvector GENERATED ALWAYS AS ("
        "to_tsvector('english', contents)) STORED",
        "CREATE INDEX IF NOT EXISTS ix_log_parts_ts ON tasks_log_parts USING GIN (ts)",
    )

    def install(self, connection: Connection) -> None:
        for statement in self.DDL:
            connection.execute(text(statement))

    def job_match(self, words: tuple[str, ...]) -> TextClause:
        return text("jobs.ts @@ plainto_tsquery('english', :job_words)").bindparams(job_words=" ".join(words))

    def log_match(self, words: tuple[str, ...], task_id: str | None) -> TextClause:
        # The task_id condition sits beside this one in the query; the index on task_id narrows first.
        return text("tasks_log_parts.ts @@ plainto_tsquery('english', :log_words)").bindparams(
            log_words=" ".join(words)
        )


def search_dialect(dialect_name: str) -> SearchDialect:
    return PostgresSearch() if dialect_name == "postgresql" else SqliteSearch()


def log_part_filters(search: SearchDialect, q: str | None, task_id: str | None) -> list[Any]:
    words = log_words(q)
    if not words:
        return []
    return [search.log_match(words, task_id)]
