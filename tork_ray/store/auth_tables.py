"""Tables of roles, role membership and job permissions (SPEC §6.2, §9.1); users live in tables.py."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, ForeignKey, Index, String
from sqlmodel import Field, SQLModel


class RoleRow(SQLModel, table=True):
    __tablename__ = "roles"

    id: str = Field(primary_key=True, max_length=32)
    slug: str = Field(max_length=64, unique=True)
    name: str = Field(default="", max_length=256)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class UserRoleRow(SQLModel, table=True):
    __tablename__ = "users_roles"

    user_id: str = Field(
        sa_column=Column(String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, nullable=False)
    )
    role_id: str = Field(
        sa_column=Column(String(32), ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True, nullable=False)
    )
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class JobPermRow(SQLModel, table=True):
    """Who may see a job that has permissions: one row per permitted user or role, plus its creator.

    By name (username, role slug): names never change, and the visibility filter of `GET /jobs` then needs no
    join with users. A job without permissions has no rows here (everyone sees it)."""

    __tablename__ = "jobs_perms"
    __table_args__ = (Index("ix_jobs_perms_subject", "kind", "subject", "job_id"),)

    job_id: str = Field(
        sa_column=Column(String(32), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True, nullable=False)
    )
    kind: str = Field(sa_column=Column(String(8), primary_key=True, nullable=False))  # user | role
    subject: str = Field(sa_column=Column(String(256), primary_key=True, nullable=False))
