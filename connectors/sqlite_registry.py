"""driftline's built-in model registry: one SQLite file.

Tables: ``models``; ``versions`` (each with the baseline file linked to it); ``aliases``
(``production``, ``canary``, … → a version); ``tags`` per version (driftline writes
``driftline.health``, ``driftline.reason``, ``driftline.updated``). A
:class:`~driftline.sqlite_file.SqliteFile`: WAL journal and a busy timeout, so the engine
and the CLI can use one file at the same time, one lock for the engine's threads.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path

from driftline.exceptions import RegistryError, UnknownVersion
from driftline.registry import ModelInfo, VersionInfo
from driftline.sqlite_file import SqliteFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    model TEXT NOT NULL REFERENCES models(name),
    version TEXT NOT NULL,
    baseline TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (model, version)
);
CREATE TABLE IF NOT EXISTS aliases (
    model TEXT NOT NULL,
    alias TEXT NOT NULL,
    version TEXT NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES versions(model, version)
);
CREATE TABLE IF NOT EXISTS tags (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model, version, key),
    FOREIGN KEY (model, version) REFERENCES versions(model, version)
);
"""


class SqliteRegistry(SqliteFile):
    WHAT = "registry"
    ERROR = RegistryError
    SCHEMA = _SCHEMA

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        try:
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            self._db.close()
            raise RegistryError(f"{self.path}: cannot open the registry: {exc}") from None

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def register(self, model: str, version: str, baseline: str | None) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO models VALUES (?, ?)", (model, now))
            db.execute(
                "INSERT INTO versions VALUES (?, ?, ?, ?) ON CONFLICT (model, version) "
                "DO UPDATE SET baseline = excluded.baseline",
                (model, version, baseline, now),
            )

    def set_alias(self, model: str, alias: str, version: str) -> None:
        with self._tx() as db:
            self._require(db, model, version)
            db.execute(
                "INSERT INTO aliases VALUES (?, ?, ?, ?) ON CONFLICT (model, alias) "
                "DO UPDATE SET version = excluded.version, updated = excluded.updated",
                (model, alias, version, time.time()),
            )

    def delete_alias(self, model: str, alias: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM aliases WHERE model = ? AND alias = ?", (model, alias))

    def set_tags(self, model: str, version: str, tags: Mapping[str, str]) -> None:
        with self._tx() as db:
            self._require(db, model, version)
            db.executemany(
                "INSERT INTO tags VALUES (?, ?, ?, ?) ON CONFLICT (model, version, key) "
                "DO UPDATE SET value = excluded.value",
                [(model, version, k, v) for k, v in tags.items()],
            )

    def baseline(self, model: str, version: str) -> str | None:
        rows = self._read(
            "SELECT baseline FROM versions WHERE model = ? AND version = ?", (model, version)
        )
        return None if not rows else rows[0][0]

    def model(self, model: str) -> ModelInfo:
        with self._tx() as db:
            if db.execute("SELECT 1 FROM models WHERE name = ?", (model,)).fetchone() is None:
                raise RegistryError(f"model '{model}' is not in the registry ({self.url})")
            versions = db.execute(
                "SELECT version, baseline, created FROM versions WHERE model = ? "
                "ORDER BY created, version",
                (model,),
            ).fetchall()
            tags = db.execute(
                "SELECT version, key, value FROM tags WHERE model = ?", (model,)
            ).fetchall()
            aliases = db.execute(
                "SELECT alias, version FROM aliases WHERE model = ? ORDER BY alias", (model,)
            ).fetchall()
        by_version: dict[str, dict[str, str]] = {}
        for v, k, value in tags:
            by_version.setdefault(v, {})[k] = value
        return ModelInfo(
            name=model,
            versions=[
                VersionInfo(v, baseline, created, by_version.get(v, {}))
                for v, baseline, created in versions
            ],
            aliases=dict(aliases),
        )

    def _require(self, db: sqlite3.Connection, model: str, version: str) -> None:
        row = db.execute(
            "SELECT 1 FROM versions WHERE model = ? AND version = ?", (model, version)
        ).fetchone()
        if row is None:
            raise UnknownVersion(
                f"model '{model}' version '{version}' is not registered ({self.url}); "
                f"register it first: driftline registry register {model} {version} --baseline FILE"
            )
