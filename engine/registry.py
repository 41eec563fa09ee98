"""The model registry seam: where model versions, their aliases and baselines live, and
where driftline writes each version's health back.

``open_registry(url)`` understands ``sqlite:///path.db`` (the built-in registry,
:mod:`driftline.connectors.sqlite_registry`) and ``mlflow+http://host:port`` /
``mlflow+https://host[/path]`` (an MLflow Model Registry over its REST API,
:mod:`driftline.connectors.mlflow_registry`: a driftline version is the MLflow version
number, the baseline link is the version tag ``driftline.baseline``). The engine resolves a
version's baseline through :class:`RegistryBaselines` (registry first, then the config file)
and writes the tags ``driftline.health``, ``driftline.reason`` and ``driftline.updated`` on
every health change through :class:`HealthTags`.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from driftline import baseline as bl
from driftline.baseline import Baseline
from driftline.exceptions import BaselineError, ConfigError, RegistryError, UnknownVersion
from driftline.health import Change

log = logging.getLogger("driftline.registry")

ENV = "DRIFTLINE_REGISTRY"
HEALTH_TAG = "driftline.health"
REASON_TAG = "driftline.reason"
UPDATED_TAG = "driftline.updated"
REASON_LIMIT = 500
"""Characters of the reasons kept in the tag (registries cap tag values; MLflow at 5,000)."""


@dataclass(frozen=True)
class VersionInfo:
    version: str
    baseline: str | None
    created: float
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    versions: list[VersionInfo]
    aliases: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "aliases": self.aliases,
            "versions": [
                {
                    "version": v.version,
                    "baseline": v.baseline,
                    "created": dt.datetime.fromtimestamp(v.created, dt.UTC).isoformat(
                        timespec="seconds"
                    ),
                    "tags": dict(v.tags),
                }
                for v in self.versions
            ],
        }


class Registry(Protocol):
    @property
    def url(self) -> str: ...

    def register(self, model: str, version: str, baseline: str | None) -> None: ...

    def set_alias(self, model: str, alias: str, version: str) -> None: ...

    def delete_alias(self, model: str, alias: str) -> None: ...

    def set_tags(self, model: str, version: str, tags: Mapping[str, str]) -> None: ...

    def baseline(self, model: str, version: str) -> str | None: ...

    def model(self, model: str) -> ModelInfo: ...

    def close(self) -> None: ...


def open_registry(url: str, base: Path | None = None) -> Registry:
    """The registry at ``url``; a relative SQLite path is taken from ``base`` (the config
    file's directory) or the working directory. An MLflow registry is not contacted until
    its first call."""
    if url.startswith("sqlite:///"):
        from driftline.connectors.sqlite_registry import SqliteRegistry

        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_absolute() and base is not None:
            path = base / path
        return SqliteRegistry(path)
    if url.startswith(("mlflow+http://", "mlflow+https://")):
        from driftline.connectors.mlflow_registry import MlflowRegistry

        return MlflowRegistry(url)
    raise ConfigError(
        f"registry {url!r}: expected sqlite:///path.db, mlflow+http://host:port or "
        "mlflow+https://host"
    )


def registry_url(option: str | None, config_url: str | None) -> str:
    """``--registry``, else the config file's ``[registry] url``, else $DRIFTLINE_REGISTRY."""
    url = option or config_url or os.environ.get(ENV)
    if not url:
        raise ConfigError(
            f"no registry: give --registry URL, a --config with [registry] url, or set {ENV}"
        )
    return url


def register(registry: Registry, model: str, version: str, baseline: Path | None) -> None:
    """Register ``model`` ``version``, linking the baseline file (checked readable first)."""
    path = None
    if baseline is not None:
        bl.load(baseline)  # a BaselineError names the file and what is wrong
        path = str(baseline.resolve())
    registry.register(model, version, path)


class RegistryBaselines:
    """Baselines linked in the registry, then the ones named in the config file.

    A registry is written by more hands than the config file, so the paths it gives are
    confined: with ``dirs`` (``[registry] baseline_dirs``), a baseline whose real path (links
    followed) is not inside one of them is refused with :class:`BaselineError`, and never
    opened."""

    def __init__(
        self, registry: Registry, fallback: Any, dirs: Sequence[Path] | None = None
    ) -> None:
        self.registry = registry
        self.fallback = fallback
        self.dirs = None if dirs is None else [d.resolve() for d in dirs]
        self._loaded: dict[str, Baseline] = {}

    def resolve(self, model: str, version: str) -> Baseline | None:
        path = self.registry.baseline(model, version)
        if path is None:
            return self.fallback.resolve(model, version)  # type: ignore[no-any-return]
        if path not in self._loaded:
            self._check(path, model, version)
            self._loaded[path] = bl.load(path)
        return self._loaded[path]

    def _check(self, path: str, model: str, version: str) -> None:
        if self.dirs is None:
            return
        try:
            real = Path(path).resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # a link loop, a NUL byte
            raise BaselineError(f"registry baseline of {model}/{version}: {exc}") from None
        if not any(real.is_relative_to(d) for d in self.dirs):
            allowed = ", ".join(str(d) for d in self.dirs)
            raise BaselineError(
                f"the registry's baseline of {model}/{version} ({path!r}) is outside "
                f"[registry] baseline_dirs ({allowed}): not read"
            )


class HealthTags:
    """Writes a model version's health to the registry on every change (the engine's
    ``on_change``). A registry that is down is logged, not fatal: the next change writes
    the then-current state."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __call__(self, model: str, version: str, change: Change) -> None:
        tags = {
            HEALTH_TAG: str(change.current),
            REASON_TAG: "; ".join(change.reasons)[:REASON_LIMIT],
            UPDATED_TAG: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        try:
            self._write(model, version, tags)
        except RegistryError as exc:
            log.warning(
                "model %r version %r: health not written to the registry: %s", model, version, exc
            )

    def _write(self, model: str, version: str, tags: dict[str, str]) -> None:
        try:
            self.registry.set_tags(model, version, tags)
        except UnknownVersion:  # configured in the file only: registered, so that its
            self.registry.register(model, version, None)  # health has a home
            self.registry.set_tags(model, version, tags)


class AliasCache:
    """Each model's aliases as the registry last said, re-read after ``ttl`` seconds (the
    action policies look them up on every window). A registry that cannot be reached gives
    the last answer (or none), logged."""

    def __init__(
        self, registry: Registry, ttl: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.registry = registry
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, dict[str, str]]] = {}
        self._failed: set[str] = set()

    def __call__(self, model: str) -> dict[str, str]:
        now = self.clock()
        with self._lock:
            hit = self._cache.get(model)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        try:
            aliases = dict(self.registry.model(model).aliases)
            self._failed.discard(model)
        except RegistryError as exc:
            level = logging.DEBUG if model in self._failed else logging.WARNING
            log.log(level, "model %r: aliases not read from the registry: %s", model, exc)
            self._failed.add(model)
            aliases = hit[1] if hit is not None else {}
        with self._lock:
            self._cache[model] = (now, aliases)
        return aliases

    def forget(self, model: str) -> None:
        """Read ``model``'s aliases afresh next time (after driftline moved one)."""
        with self._lock:
            self._cache.pop(model, None)
