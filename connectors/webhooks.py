"""Webhook delivery: receivers, the signed HTTP POST, and the dispatcher that drains the
alert outbox (:mod:`driftline.outbox`) in a background thread.

Every request is a ``POST`` of the alert rendered for the receiver's format
(:func:`driftline.alerts.render`) with the headers

- ``Content-Type: application/json``, ``User-Agent: driftline/<version>``;
- ``Idempotency-Key: <alert id>``: equal on every retry of one alert, so a receiver can
  drop a duplicate (an alert is sent again if driftline stops between the receiver's
  answer and marking the alert delivered);
- ``X-Driftline-Timestamp: <unix seconds of this attempt>``;
- ``X-Driftline-Signature: sha256=<hex HMAC-SHA256 of the exact body>`` when the receiver
  has a secret (``secret_env``); receivers check it with :func:`verify_signature`.

The answer decides: 2xx delivered; 408, 429 and 5xx, timeouts and connection errors are
retried (after the outbox's backoff, and not before a ``Retry-After``); any other status
(other 4xx, and 3xx: redirects are not followed, since a redirected POST would become a
GET) is a permanent failure and the alert is dead for that receiver, with the reason.

Secrets (the HMAC secret, PagerDuty's routing key, the URL, which for Slack is itself the
credential, and header values) are read from the environment once, when the dispatcher is
made, and never written to logs or error messages: a receiver is named by its ``name``,
and a receiver's error text is scrubbed of them.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import http.client
import logging
import math
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import IO, Literal
from urllib.parse import urlsplit

from driftline import __version__
from driftline.alerts import (
    FORMATS,
    Alert,
    AlertCounters,
    CountState,
    Format,
    RenderOptions,
    render,
)
from driftline.background import Passes
from driftline.exceptions import ConfigError
from driftline.outbox import Entry, Outbox

log = logging.getLogger("driftline.webhooks")

SIGNATURE_HEADER = "X-Driftline-Signature"
TIMESTAMP_HEADER = "X-Driftline-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_RESERVED = {
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "user-agent",
    IDEMPOTENCY_HEADER.lower(),
    SIGNATURE_HEADER.lower(),
    TIMESTAMP_HEADER.lower(),
}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
"""An HTTP header name (RFC 9110 ``token``)."""
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RETRY_STATUSES = frozenset({408, 429})
_ERROR_TEXT = 200
"""Characters of a receiver's error answer kept in the reason."""
_READ_LIMIT = 65536
"""Bytes of an answer read (and dropped) at most."""
_MIN_SECRET = 4
"""Shorter strings are not scrubbed from messages (they would mangle ordinary words)."""


def sign(secret: bytes, body: bytes) -> str:
    """The ``X-Driftline-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """True if ``header`` (an ``X-Driftline-Signature`` value) signs ``body`` with
    ``secret``. For receivers: pass the raw body bytes as received, before any parsing.
    Compared in constant time.

    >>> body = b'{"status": "firing"}'
    >>> verify_signature("s3cret", body, sign(b"s3cret", body))
    True
    >>> verify_signature("s3cret", body + b" ", sign(b"s3cret", body))
    False
    """
    if not header:
        return False
    key = secret.encode() if isinstance(secret, str) else secret
    expected = sign(key, body).encode("ascii")
    try:
        given = header.strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected, given)


@dataclass(frozen=True)
class Receiver:
    """One ``[[alerts.receivers]]``: where alerts go and in which format.

    Give the URL as ``url`` or, when the URL is itself a secret (a Slack incoming webhook),
    as ``url_env``, the name of an environment variable holding it. ``secret_env`` names the
    variable holding the HMAC secret; ``routing_key_env`` (``pagerduty`` only, and required
    there) the one holding the PagerDuty integration key."""

    name: str
    url: str | None = field(default=None, repr=False)  # a Slack webhook URL is a secret
    format: Format = "json"
    url_env: str | None = None
    secret_env: str | None = None
    routing_key_env: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold a token
    timeout: float = 10.0
    headers_env: Mapping[str, str] = field(default_factory=dict)
    """Headers whose values are read from the environment (header name → variable name):
    tokens stay out of the config file."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(
                f"alerts.receivers: name must be a non-empty string, got {self.name!r}"
            )
        where = f"alerts.receivers {self.name!r}"
        if self.format not in FORMATS:
            raise ConfigError(
                f"{where}: format must be one of {list(FORMATS)}, got {self.format!r}"
            )
        if (self.url is None) == (self.url_env is None):
            raise ConfigError(f"{where}: give exactly one of url and url_env")
        if self.url is not None:
            check_url(self.url, where)
        for key in ("url_env", "secret_env", "routing_key_env"):
            value = getattr(self, key)
            if value is not None:
                check_env_name(value, key, where)
        if self.format == "pagerduty" and self.routing_key_env is None:
            raise ConfigError(
                f"{where}: format 'pagerduty' needs routing_key_env (the variable holding "
                "the integration key)"
            )
        if self.format != "pagerduty" and self.routing_key_env is not None:
            raise ConfigError(f"{where}: routing_key_env is for format 'pagerduty' only")
        check_headers(self.headers, where)
        check_headers_env(self.headers_env, self.headers, where)
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ConfigError(f"{where}: timeout must be a positive number, got {self.timeout}")


def check_headers_env(
    headers_env: Mapping[str, str], headers: Mapping[str, str], where: str
) -> None:
    """``headers_env``: valid header names (as :func:`check_headers`), each naming an
    environment variable, none also given in ``headers``."""
    check_headers(dict.fromkeys(headers_env, ""), where)
    for name, var in headers_env.items():
        check_env_name(var, f"headers_env.{name}", where)
        if name.lower() in {h.lower() for h in headers}:
            raise ConfigError(f"{where}: header {name!r} is in both headers and headers_env")


def check_headers(headers: Mapping[str, str], where: str) -> None:
    """Refuse header names that are not HTTP tokens or that driftline sets itself, and values
    that are not one line of ISO-8859-1 text (``where`` names the config table)."""
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise ConfigError(f"{where}: {name!r} is not a valid header name")
        if name.lower() in _RESERVED:
            raise ConfigError(f"{where}: header {name!r} is set by driftline")
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            raise ConfigError(f"{where}: header {name!r} must be a one-line string")
        try:
            value.encode("latin-1")  # what HTTP/1.1 header values can carry
        except UnicodeEncodeError:
            raise ConfigError(
                f"{where}: header {name!r} must be ISO-8859-1 text (HTTP header values)"
            ) from None


def check_env_name(value: str, key: str, where: str) -> None:
    if not _ENV_NAME.match(value):
        raise ConfigError(f"{where}: {key} must name an environment variable, got {value!r}")


def check_url(url: str, where: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:  # a bracketed host that is not an IPv6 address ("http://[::1")
        raise ConfigError(f"{where}: url is not a URL (a bad [IPv6] host)") from None
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number in range)
    except ValueError:
        raise ConfigError(f"{where}: url has an invalid port") from None  # URL not echoed
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # not echoed: a webhook URL can carry a token
        raise ConfigError(
            f"{where}: url must be an http:// or https:// URL with a host "
            f"(got scheme {parts.scheme!r})"
        )


def read_env(environ: Mapping[str, str], var: str, where: str, what: str) -> str:
    value = environ.get(var, "")
    if not value:
        raise ConfigError(f"{where}: {what} is read from ${var}, which is not set or empty")
    return value


@dataclass(frozen=True)
class Endpoint:
    """Where one webhook POSTs, with its secrets read from the environment: the URL (given,
    or from ``url_env``, checked either way), the HMAC secret, and the strings scrubbed from
    every message about it. Nothing secret in repr."""

    url: str = field(repr=False)
    secret: bytes | None = field(repr=False)
    hidden: tuple[str, ...] = field(repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    """The headers sent: the configured ones and those read from ``headers_env``."""

    @classmethod
    def read(
        cls,
        where: str,
        environ: Mapping[str, str],
        *,
        url: str | None,
        url_env: str | None,
        secret_env: str | None,
        headers: Mapping[str, str],
        headers_env: Mapping[str, str] | None = None,
        also_hidden: Sequence[str] = (),
    ) -> Endpoint:
        env = partial(read_env, environ, where=where)
        target = url if url is not None else env(url_env or "", what="the url")
        check_url(target, where)
        secret = None if secret_env is None else env(secret_env, what="the secret")
        from_env = {
            name: env(var, what=f"header {name!r}") for name, var in (headers_env or {}).items()
        }
        check_headers(from_env, where)
        sent = {**headers, **from_env}
        parts = urlsplit(target)
        hidden = [target, parts.path, parts.query, parts.password or "", secret or ""]
        hidden += [*sent.values(), *also_hidden]
        # "Bearer abc…": the token alone is scrubbed too
        hidden += [v.split(" ", 1)[1] for v in sent.values() if " " in v]
        return cls(
            url=target,
            secret=None if secret is None else secret.encode(),
            hidden=tuple(sorted({h for h in hidden if len(h) >= _MIN_SECRET}, key=len)[::-1]),
            headers=sent,
        )

    def scrub(self, text: str) -> str:
        for h in self.hidden:
            text = text.replace(h, "***")
        return text


@dataclass(frozen=True)
class _Target:
    """A receiver with its endpoint read: what one POST needs."""

    receiver: Receiver
    options: RenderOptions
    endpoint: Endpoint

    @classmethod
    def resolve(cls, r: Receiver, base: RenderOptions, environ: Mapping[str, str]) -> _Target:
        where = f"alerts.receivers {r.name!r}"
        key = (
            ""
            if r.routing_key_env is None
            else read_env(environ, r.routing_key_env, where=where, what="the key")
        )
        endpoint = Endpoint.read(
            where,
            environ,
            url=r.url,
            url_env=r.url_env,
            secret_env=r.secret_env,
            headers=r.headers,
            headers_env=r.headers_env,
            also_hidden=[key],
        )
        return cls(r, replace(base, receiver=r.name, routing_key=key), endpoint)


@dataclass(frozen=True)
class Outcome:
    """The result of one POST."""

    result: Literal["delivered", "retry", "permanent"]
    status: int | None
    reason: str
    retry_after: float | None = None
    """Seconds the receiver asked to wait (``Retry-After``), if it did."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answered as what they are (3xx, a permanent failure)."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> None:
        return None


def _retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _classify(status: int) -> Literal["delivered", "retry", "permanent"]:
    if 200 <= status < 300:
        return "delivered"
    if status in _RETRY_STATUSES or status >= 500:
        return "retry"
    return "permanent"


def post_json(
    endpoint: Endpoint,
    body: bytes,
    *,
    key: str,
    headers: Mapping[str, str],
    timeout: float,
    now: float,
    opener: urllib.request.OpenerDirector,
) -> Outcome:
    """POST ``body`` (JSON) to the endpoint with driftline's headers (``Idempotency-Key:
    key``, the timestamp, and the signature when it has a secret), and classify the answer.
    The reason is scrubbed of the endpoint's secrets."""
    secret, scrub = endpoint.secret, endpoint.scrub
    sent = {
        **headers,
        "Content-Type": "application/json",
        "User-Agent": f"driftline/{__version__}",
        IDEMPOTENCY_HEADER: key,
        TIMESTAMP_HEADER: str(int(now)),
    }
    if secret is not None:
        sent[SIGNATURE_HEADER] = sign(secret, body)
    request = urllib.request.Request(endpoint.url, data=body, headers=sent, method="POST")
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(_READ_LIMIT)
            status = int(response.status)
            return Outcome(_classify(status), status, f"HTTP {status}")
    except urllib.error.HTTPError as exc:
        try:
            text = exc.read(_READ_LIMIT).decode("utf-8", "replace") if exc.fp else ""
            retry_after = _retry_after(exc.headers.get("Retry-After"), now)
        finally:
            exc.close()
        text = " ".join(text.split())[:_ERROR_TEXT]
        reason = f"HTTP {exc.code}" + (f": {text}" if text else "")
        return Outcome(_classify(exc.code), exc.code, scrub(reason), retry_after)
    except urllib.error.URLError as exc:
        return Outcome("retry", None, scrub(f"cannot connect: {exc.reason}"))
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, bad answers
        return Outcome("retry", None, scrub(f"{type(exc).__name__}: {exc}"))
    except ValueError as exc:  # a request that cannot be made (e.g. a header with a newline)
        return Outcome("permanent", None, scrub(f"cannot send: {exc}"))


def opener() -> urllib.request.OpenerDirector:
    """A URL opener that does not follow redirects (see the module docstring)."""
    return urllib.request.build_opener(_NoRedirect())


def _post(
    target: _Target, alert: Alert, now: float, opener: urllib.request.OpenerDirector
) -> Outcome:
    r = target.receiver
    return post_json(
        target.endpoint,
        render(alert, r.format, target.options),
        key=alert.id,
        headers=target.endpoint.headers,
        timeout=r.timeout,
        now=now,
        opener=opener,
    )


class Dispatcher(Passes):
    """Drains the outbox: a background thread that POSTs every due alert to its receiver.

    ``start()`` runs it, ``stop()`` ends it (the POST in flight finishes first, bounded by
    the receiver's timeout), ``flush(timeout)`` waits until nothing is pending (tests, and a
    draining shutdown). A receiver that fails is not tried again before its backoff, for
    any alert. Counts go to ``counters`` by (model, severity, state): ``delivered``,
    ``retried`` (a failed attempt that will be retried) and ``dead``.
    """

    def __init__(
        self,
        outbox: Outbox,
        receivers: Sequence[Receiver],
        *,
        options: RenderOptions | None = None,
        counters: AlertCounters | None = None,
        poll_interval: float = 1.0,
        batch: int = 100,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        names = [r.name for r in receivers]
        if len(set(names)) != len(names):
            raise ConfigError(f"alerts.receivers: names must be unique, got {names}")
        if not poll_interval > 0 or batch < 1:
            raise ValueError(
                f"poll_interval and batch must be positive, got {poll_interval}, {batch}"
            )
        env = os.environ if environ is None else environ
        base = options if options is not None else RenderOptions()
        super().__init__(poll_interval, clock)
        self.outbox = outbox
        self.counters = counters if counters is not None else AlertCounters()
        self.batch = batch
        self._targets = {r.name: _Target.resolve(r, base, env) for r in receivers}
        self._opener = opener()
        self._passed = threading.Condition()
        outbox.subscribe(self.wake)

    @property
    def delivered(self) -> int:
        return self.counters.total("delivered")

    @property
    def retried(self) -> int:
        return self.counters.total("retried")

    @property
    def dead(self) -> int:
        return self.counters.total("dead")

    # -- the thread (start, stop: Passes) -----------------------------------------------

    WHAT = "alert dispatcher"

    def __enter__(self) -> Dispatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def flush(self, timeout: float) -> bool:
        """Wait until no alert is pending (delivered or dead); False on timeout."""
        if self._thread is None:
            raise RuntimeError("flush() needs a running dispatcher: call start() first")
        deadline = time.monotonic() + timeout
        while self.outbox.pending() > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._passed:
                self._passed.wait(min(remaining, 0.05))
        return True

    def next_due(self) -> float | None:
        return self.outbox.next_due()

    def after_pass(self) -> None:
        with self._passed:
            self._passed.notify_all()

    # -- one pass ------------------------------------------------------------------------

    def run_once(self) -> int:
        """Send every alert due now (one batch); return the number of POSTs made."""
        now = self.clock()
        for entry in self.outbox.expire(now):
            self._dead(entry)
        posts = 0
        failing: set[str] = set()
        for entry in self.outbox.due(now, self.batch):
            if self.stopping:
                break
            if entry.receiver in failing:
                continue
            target = self._targets.get(entry.receiver)
            if target is None:
                why = f"receiver {entry.receiver!r} is no longer configured"
                self._dead(self.outbox.dead(entry.id, why, self.clock()))
                continue
            outcome = _post(target, entry.alert, self.clock(), self._opener)
            posts += 1
            now = self.clock()
            if outcome.result == "delivered":
                self.outbox.delivered(entry.id, now)
                self._count(entry, "delivered")
                log.debug("alert %s delivered to %r", entry.alert.id, entry.receiver)
            elif outcome.result == "permanent":
                self._dead(self.outbox.dead(entry.id, outcome.reason, now))
            else:
                self._retry(entry, outcome, now)
                failing.add(entry.receiver)
        return posts

    def _retry(self, entry: Entry, outcome: Outcome, now: float) -> None:
        not_before = None if outcome.retry_after is None else now + outcome.retry_after
        after = self.outbox.failed(entry.id, outcome.reason, now, not_before=not_before)
        if after.state == "dead":
            self._dead(after)
            return
        self._count(entry, "retried")
        self.outbox.postpone(entry.receiver, after.next_attempt)
        log.info(
            "alert %s to %r: %s; attempt %d failed, next in %.1f s",
            entry.alert.id,
            entry.receiver,
            outcome.reason,
            after.attempts,
            after.next_attempt - now,
        )

    def _dead(self, entry: Entry) -> None:
        self._count(entry, "dead")
        log.warning(
            "alert %s (%r version %r, %s %s) to %r given up after %d attempts: %s",
            entry.alert.id,
            entry.alert.model,
            entry.alert.version,
            entry.alert.severity,
            entry.alert.status,
            entry.receiver,
            entry.attempts,
            entry.error,
        )

    def _count(self, entry: Entry, state: CountState) -> None:
        self.counters.inc(entry.alert.model, entry.alert.severity, state)
