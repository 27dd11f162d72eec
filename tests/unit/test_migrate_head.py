"""migrate.HEAD, the revision a store is opened at without Alembic, is the head of the shipped scripts: a new
revision that forgot to move it would leave every existing store unmigrated."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory

from tork_ray.store.migrate import HEAD, MIGRATIONS


def test_head_names_the_newest_revision_of_the_scripts() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD]
