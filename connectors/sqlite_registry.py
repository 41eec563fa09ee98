"""driftline's built-in model registry: one SQLite file.

Tables: ``models``; ``versions`` (each with the baseline file linked to it); ``aliases``
(``production``, ``canary``, … → a version); ``tags`` per version (driftline writes
``driftline.health``, ``driftline.reason``, ``driftline.updated``). WAL journal and a busy
timeout, so the engine and the CLI can use one file at the same time.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from driftline.exceptions import RegistryError, UnknownVersion
from driftline.registry import ModelInfo, VersionInfo

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


class SqliteRegistry:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise RegistryError(f"{self.path}: cannot open the registry: {exc}") from None

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._db:
                yield self._db
        except sqlite3.Error as exc:
            raise RegistryError(f"{self.path}: {exc}") from None

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
        self._require(model, version)
        with self._tx() as db:
            db.execute(
                "INSERT INTO aliases VALUES (?, ?, ?, ?) ON CONFLICT (model, alias) "
                "DO UPDATE SET version = excluded.version, updated = excluded.updated",
                (model, alias, version, time.time()),
            )

    def delete_alias(self, model: str, alias: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM aliases WHERE model = ? AND alias = ?", (model, alias))

    def set_tags(self, model: str, version: str, tags: Mapping[str, str]) -> None:
        self._require(model, version)
        with self._tx() as db:
            db.executemany(
                "INSERT INTO tags VALUES (?, ?, ?, ?) ON CONFLICT (model, version, key) "
                "DO UPDATE SET value = excluded.value",
                [(model, version, k, v) for k, v in tags.items()],
            )

    def baseline(self, model: str, version: str) -> str | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT baseline FROM versions WHERE model = ? AND version = ?", (model, version)
            ).fetchone()
        return None if row is None else row[0]

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

    def _require(self, model: str, version: str) -> None:
        with self._tx() as db:
            row = db.execute(
                "SELECT 1 FROM versions WHERE model = ? AND version = ?", (model, version)
            ).fetchone()
        if row is None:
            raise UnknownVersion(
                f"model '{model}' version '{version}' is not registered ({self.url}); "
                f"register it first: driftline registry register {model} {version} --baseline FILE"
            )
