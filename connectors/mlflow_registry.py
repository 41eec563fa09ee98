"""driftline's registry backend for an MLflow Model Registry, over MLflow's REST API
(``/api/2.0/mlflow/...``, plain HTTP from the standard library: the ``mlflow`` package is
not needed).

URL: the MLflow server's address with ``mlflow+`` in front: ``mlflow+http://host:5000``,
``mlflow+https://mlflow.example.com/prefix``. ``?timeout=SECONDS`` sets how long one
request may take (default 10 s).

Versions. MLflow numbers a registered model's versions itself, ``1``, ``2``, ``3``, … in
the order they are created, and serving names them that way (``models:/fraud/3``). So a
driftline version *is* the MLflow version number: the events' ``"version": "3"`` is
MLflow's version 3 of that model.

- ``register`` of a version that exists (the usual case: the training pipeline registered
  the model with MLflow) links the baseline and changes nothing else.
- ``register`` of a version that does not exist creates it, and the registered model if
  needed, only when it is the next number (one more than the highest version there is);
  any other number raises :class:`~driftline.exceptions.RegistryError` naming the next
  one, and creates nothing. A version driftline creates has the ``source``
  ``driftline://models/MODEL`` (MLflow refuses a local path without a run, and the
  baseline is not the model's artefact) and the description "registered by driftline".
- MLflow never reuses the number of a deleted version, and cannot be asked which number
  it gives next. So when the highest version was deleted, MLflow gives the new version a
  higher number than asked: the version is kept (with the baseline: it is the model just
  registered, under MLflow's number) and ``register`` raises ``RegistryError`` naming the
  number MLflow gave. It is not deleted again: every later try would use up one more
  number.
- A version that is not written as MLflow writes its numbers (``v7``, ``07``) is not an
  MLflow version: ``baseline`` answers ``None`` and the other methods raise
  :class:`~driftline.exceptions.UnknownVersion`.

What driftline keeps where: the baseline link is the version tag ``driftline.baseline``
(the file's absolute path; :meth:`MlflowRegistry.model` reports it as the version's
``baseline`` and leaves it out of ``tags``, like the built-in registry); the health is the
version tags ``driftline.health``, ``driftline.reason``, ``driftline.updated`` (one
``model-versions/set-tag`` call each); aliases are MLflow's own registered-model aliases
(MLflow reserves ``latest`` and ``v1``, ``v2``, …). Everything is visible in MLflow's UI
and API.

Errors: a missing model or version raises ``UnknownVersion``, as the built-in registry
does; any other failure raises :class:`MlflowError` (a ``RegistryError``) naming the URL,
the request, the HTTP status and MLflow's ``error_code`` and message; a server that does
not answer raises ``RegistryError`` naming the URL.
"""

from __future__ import annotations

import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from driftline.exceptions import ConfigError, RegistryError, UnknownVersion
from driftline.registry import ModelInfo, VersionInfo

BASELINE_TAG = "driftline.baseline"
DEFAULT_TIMEOUT = 10.0
"""Seconds one request may take: MLflow answers registry calls in milliseconds, so ten
seconds means it is stuck, not busy."""
SCHEMES = ("mlflow+http", "mlflow+https")
_NUMBER = re.compile(r"[1-9][0-9]*")
_MISSING = "RESOURCE_DOES_NOT_EXIST"
_EXISTS = "RESOURCE_ALREADY_EXISTS"


class MlflowError(RegistryError):
    """The MLflow server answered a request with an error."""

    def __init__(self, message: str, status: int, error_code: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class MlflowRegistry:
    def __init__(self, url: str, timeout: float | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise ConfigError(
                f"registry {url!r}: expected mlflow+http://host:port or mlflow+https://host"
            )
        try:
            parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
        except ValueError:
            raise ConfigError(f"registry {url!r}: the port must be a number") from None
        if parts.username is not None or parts.fragment:
            raise ConfigError(
                f"registry {url!r}: expected mlflow+http://host:port[/path][?timeout=SECONDS], "
                "without user, password or #fragment"
            )
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - {"timeout"})
        if unknown:
            raise ConfigError(f"registry {url!r}: unknown option {unknown[0]!r}; known: timeout")
        if timeout is None:
            timeout = _timeout(url, query["timeout"][-1]) if "timeout" in query else DEFAULT_TIMEOUT
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ConfigError(
                f"registry {url!r}: timeout must be a positive number of seconds, got {timeout}"
            )
        self.timeout = timeout
        self._url = url.rstrip("/")
        root = urllib.parse.urlunsplit(
            (parts.scheme.removeprefix("mlflow+"), parts.netloc, parts.path.rstrip("/"), "", "")
        )
        self._api = f"{root}/api/2.0/mlflow/"

    @property
    def url(self) -> str:
        return self._url

    def close(self) -> None:
        """Nothing to release: every request opens and closes its own connection."""

    def register(self, model: str, version: str, baseline: str | None) -> None:
        if not _NUMBER.fullmatch(version):
            raise RegistryError(
                f"model '{model}' version '{version}': MLflow numbers versions 1, 2, 3, …; "
                f"register the version by its MLflow number ({self.url})"
            )
        if self._version(model, version) is None:
            self._create(model, version, baseline)
        elif baseline is not None:
            self._set_tag(model, version, BASELINE_TAG, baseline)
        else:
            self._delete_tag(model, version, BASELINE_TAG)

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self._require_number(model, version)
        body = {"name": model, "alias": alias, "version": version}
        if self._found("POST", "registered-models/alias", body=body) is None:
            raise self._unknown(model, version)

    def delete_alias(self, model: str, alias: str) -> None:
        # no such model: no alias to delete
        self._found("DELETE", "registered-models/alias", body={"name": model, "alias": alias})

    def set_tags(self, model: str, version: str, tags: Mapping[str, str]) -> None:
        self._require_number(model, version)
        for key, value in tags.items():
            self._set_tag(model, version, key, value)

    def baseline(self, model: str, version: str) -> str | None:
        if not _NUMBER.fullmatch(version):
            return None
        found = self._version(model, version)
        return None if found is None else _tags(found).get(BASELINE_TAG)

    def model(self, model: str) -> ModelInfo:
        got = self._found("GET", "registered-models/get", query={"name": model})
        if got is None:
            raise RegistryError(f"model '{model}' is not in the registry ({self.url})")
        aliases = {a["alias"]: a["version"] for a in got["registered_model"].get("aliases", [])}
        versions = []
        for v in sorted(self._versions(model), key=lambda v: int(v["version"])):
            tags = _tags(v)
            baseline = tags.pop(BASELINE_TAG, None)
            created = int(v.get("creation_timestamp", 0)) / 1000
            versions.append(VersionInfo(v["version"], baseline, created, tags))
        return ModelInfo(name=model, versions=versions, aliases=dict(sorted(aliases.items())))

    # -- MLflow requests -------------------------------------------------------------------

    def _version(self, model: str, version: str) -> dict[str, Any] | None:
        got = self._found("GET", "model-versions/get", query={"name": model, "version": version})
        return None if got is None else got["model_version"]

    def _versions(self, model: str) -> Iterator[dict[str, Any]]:
        """Every version of ``model``, through model-versions/search page by page."""
        query = {"filter": _name_filter(model)}
        while True:
            got = self._call("GET", "model-versions/search", query=query)
            for v in got.get("model_versions", []):
                if v["name"] == model:  # a LIKE filter may match more names
                    yield v
            token = got.get("next_page_token")
            if not token:
                return
            query["page_token"] = token

    def _create(self, model: str, version: str, baseline: str | None) -> None:
        try:
            self._call("POST", "registered-models/create", body={"name": model})
        except MlflowError as exc:
            if exc.error_code != _EXISTS:
                raise
        after = max((int(v["version"]) for v in self._versions(model)), default=0) + 1
        if int(version) < after:
            raise RegistryError(
                f"model '{model}' version '{version}' is not in the MLflow registry "
                f"({self.url}): it was deleted, and MLflow never reuses a version number. "
                f"The next version of '{model}' is {after} or later"
            )
        if int(version) > after:
            raise RegistryError(
                f"model '{model}' version '{version}' is not in the MLflow registry ({self.url}) "
                f"and MLflow numbers versions itself: the next version of '{model}' is {after}. "
                f"Register the model with MLflow first (mlflow.register_model), or register "
                f"version {after}"
            )
        body: dict[str, Any] = {
            "name": model,
            "source": f"driftline://models/{urllib.parse.quote(model, safe='')}",
            "description": "registered by driftline",
        }
        if baseline is not None:
            body["tags"] = [{"key": BASELINE_TAG, "value": baseline}]
        got = self._call("POST", "model-versions/create", body=body)["model_version"]["version"]
        if got != version:
            raise RegistryError(
                f"model '{model}': MLflow ({self.url}) numbered the new version {got}, not "
                f"{version} (the numbers of deleted versions are never reused, or another "
                f"client registered a version at the same moment). Version {got} is registered"
                + ("" if baseline is None else " with the baseline")
                + f"; use {got} as the version, or delete it in MLflow"
            )

    def _set_tag(self, model: str, version: str, key: str, value: str) -> None:
        body = {"name": model, "version": version, "key": key, "value": value}
        if self._found("POST", "model-versions/set-tag", body=body) is None:
            raise self._unknown(model, version)

    def _delete_tag(self, model: str, version: str, key: str) -> None:
        # no such tag: nothing to delete
        body = {"name": model, "version": version, "key": key}
        self._found("DELETE", "model-versions/delete-tag", body=body)

    def _found(
        self,
        method: str,
        endpoint: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """:meth:`_call`, with None when MLflow answers that the model, version, alias or
        tag does not exist (RESOURCE_DOES_NOT_EXIST)."""
        try:
            return self._call(method, endpoint, body=body, query=query)
        except MlflowError as exc:
            if exc.error_code == _MISSING:
                return None
            raise

    def _call(
        self,
        method: str,
        endpoint: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One request; the answer's JSON object. HTTP and network failures are raised as
        RegistryError naming the URL and the request."""
        url = self._api + endpoint
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(
            url,
            data=None if body is None else orjson.dumps(body),
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        what = f"{method} /api/2.0/mlflow/{endpoint}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise _http_error(self.url, what, exc.code, exc.read()) from None
        except TimeoutError:
            raise self._timed_out(what) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise self._timed_out(what) from None
            raise RegistryError(
                f"MLflow registry {self.url}: cannot connect ({exc.reason}); is the MLflow "
                "server running at that address?"
            ) from None
        except OSError as exc:  # the connection broke after it was made
            raise RegistryError(f"MLflow registry {self.url}: {what} failed: {exc}") from None
        try:
            answer = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            raise RegistryError(
                f"MLflow registry {self.url}: {what} answered with something other than a JSON "
                f"object: {payload[:200]!r}; is that address an MLflow server?"
            )
        return answer

    def _timed_out(self, what: str) -> RegistryError:
        return RegistryError(
            f"MLflow registry {self.url}: no answer to {what} within {self.timeout:g} s "
            "(add ?timeout=SECONDS to the registry URL to wait longer)"
        )

    def _require_number(self, model: str, version: str) -> None:
        if not _NUMBER.fullmatch(version):
            raise self._unknown(model, version)

    def _unknown(self, model: str, version: str) -> UnknownVersion:
        return UnknownVersion(
            f"model '{model}' version '{version}' is not registered ({self.url}); "
            f"register it first: driftline registry register {model} {version} --baseline FILE"
        )


def _timeout(url: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(
            f"registry {url!r}: timeout must be a number of seconds, got {text!r}"
        ) from None


def _http_error(url: str, what: str, status: int, payload: bytes) -> MlflowError:
    try:
        answer = orjson.loads(payload)
    except orjson.JSONDecodeError:
        answer = None
    if isinstance(answer, dict) and "error_code" in answer:
        code = str(answer["error_code"])
        detail = f"{code}: {answer.get('message', '')}"
    else:
        code = ""
        detail = payload[:200].decode("utf-8", "replace").strip() or "(no body)"
    return MlflowError(f"MLflow registry {url}: {what}: HTTP {status} {detail}", status, code)


def _tags(version: Mapping[str, Any]) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in version.get("tags", [])}


def _name_filter(model: str) -> str:
    """The search filter for the versions of ``model``. MLflow's filter strings have no
    escape for quotes: a name with both quote characters is matched with LIKE (each quote
    as the one-character wildcard) and the answer filtered by exact name."""
    if "'" not in model:
        return f"name='{model}'"
    if '"' not in model:
        return f'name="{model}"'
    return "name LIKE '{}'".format(model.replace("'", "_"))
