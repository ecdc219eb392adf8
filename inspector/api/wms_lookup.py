"""Asking the WMS about a return the station was not told of (``returns.lookup_url``).

The URL is a template naming ``{rma}`` and/or ``{lpn}``; it is asked only when every
name it holds is known. The WMS answers the return as ``PUT /v1/returns/{rma}`` takes
it (``{"lines": [...]}``, maybe with ``"rma"`` and ``"expires_at"``), a bare list of
lines, or one line; 404 means it does not know the return. Answers and 404s are
remembered for ``returns.lookup_cache_s``; a WMS that is slow, down or answers
nonsense is a :class:`Answer` with status ``failed`` and a sentence saying why,
never an exception: the inspection goes on without it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
from pydantic import TypeAdapter, ValidationError

from inspector.api.guards import strict_json
from inspector.api.problems import Problem
from inspector.config import ReturnsConfig
from inspector.store.returns import Entry, ReturnLine, as_utc, rma_problem

MAX_ANSWER_BYTES = 1_000_000  # one return; a WMS sending more is answering something else
CACHE_SIZE = 4096
_WHEN = TypeAdapter(datetime)


@dataclass(frozen=True, slots=True)
class Answer:
    """What the WMS said: ``found`` with the lines to store, ``missing`` (404), or ``failed`` and why."""

    status: Literal["found", "missing", "failed"]
    rma: str | None = None
    entries: tuple[Entry, ...] = field(default=())
    message: str = ""


class WmsLookup:
    """The pull side of expected returns: one GET per unknown return, answers and 404s cached."""

    def __init__(self, cfg: ReturnsConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.template = cfg.lookup_url
        self.timeout_s = cfg.lookup_timeout_s
        self.cache_s = cfg.lookup_cache_s
        self.clock = clock
        self._cache: dict[str, tuple[float, Answer]] = {}
        self._lock = threading.Lock()
        if self.template is not None:
            parts = urlsplit(self.template.replace("{rma}", "x").replace("{lpn}", "x"))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"returns.lookup_url {self.template!r} is not an http(s) URL")
            if "{rma}" not in self.template and "{lpn}" not in self.template:
                raise ValueError(f"returns.lookup_url {self.template!r} names neither {{rma}} nor {{lpn}}")

    def url(self, rma: str | None, lpn: str | None) -> str | None:
        """The URL that asks about this item; None when no lookup is set or the template names what is not known."""
        url = self.template
        if url is None:
            return None
        for name, value in (("{rma}", rma), ("{lpn}", lpn)):
            if name in url:
                if not value:
                    return None
                url = url.replace(name, quote(value, safe=""))
        return url

    def ask(self, rma: str | None, lpn: str | None) -> Answer | None:
        """The WMS's answer about the item with ``rma`` and/or ``lpn``; None when it cannot be asked."""
        url = self.url(rma, lpn)
        if url is None:
            return None
        now = self.clock()
        with self._lock:
            hit = self._cache.get(url)
        if hit is not None and hit[0] > now:
            return hit[1]
        answer = self._fetch(url, rma, lpn)
        if answer.status != "failed" and self.cache_s > 0:
            with self._lock:
                if len(self._cache) >= CACHE_SIZE:
                    self._cache.clear()
                self._cache[url] = (now + self.cache_s, answer)
        return answer

    def _fetch(self, url: str, rma: str | None, lpn: str | None) -> Answer:
        host = urlsplit(url).netloc
        what = f"RMA {rma}" if rma else f"LPN {lpn}"
        deadline = time.monotonic() + self.timeout_s
        try:
            with (
                httpx.Client(timeout=self.timeout_s, follow_redirects=False, trust_env=False) as client,
                client.stream("GET", url, headers={"accept": "application/json"}) as response,
            ):
                if response.status_code == 404:
                    return Answer("missing", rma, message=f"the WMS does not know {what}")
                if response.status_code != 200:
                    return Answer("failed", rma, message=f"the WMS at {host} answered {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        return Answer("failed", rma, message=f"the WMS answer is over {MAX_ANSWER_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("the answer did not end in time")
        except httpx.TimeoutException:
            return Answer("failed", rma, message=f"the WMS at {host} did not answer within {self.timeout_s:g} s")
        except httpx.HTTPError as exc:
            return Answer("failed", rma, message=f"the WMS at {host} cannot be reached: {exc}")
        try:
            return parse_answer(strict_json(bytes(body), where="the WMS answer"), rma)
        except (ValueError, Problem) as exc:  # not JSON, JSON the guards refuse, or lines this station cannot use
            return Answer("failed", rma, message=f"the WMS answer about {what} is not usable: {exc}")


def parse_answer(data: Any, rma: str | None) -> Answer:
    """The lines of a WMS answer; ValueError when it is not one of the shapes the station reads."""
    expires: Any = None
    if isinstance(data, list):
        raw_lines = data
    elif isinstance(data, dict) and "lines" in data:
        raw_lines, rma, expires = data["lines"], data.get("rma") or rma, data.get("expires_at")
    elif isinstance(data, dict):
        raw_lines, rma = [data], data.get("rma") or rma
    else:
        raise ValueError("expected an object or a list of lines")
    if not isinstance(raw_lines, list):
        raise ValueError("lines is not a list")
    if not raw_lines:
        return Answer("missing", rma, message=f"the WMS has no lines for RMA {rma}")
    if not isinstance(rma, str) or rma_problem(rma) is not None:
        raise ValueError(f"it names no usable RMA ({rma!r})")
    try:
        until = as_utc(_WHEN.validate_python(expires)) if expires is not None else None
        entries = []
        for n, raw in enumerate(raw_lines, start=1):
            if not isinstance(raw, dict):
                raise ValueError(f"line {n} is not an object")
            line = ReturnLine.model_validate({k: v for k, v in raw.items() if k not in ("rma", "expires_at")})
            entries.append(Entry(rma, line.line or n, line, until))
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    return Answer("found", rma, tuple(entries))
