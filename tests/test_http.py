"""The HTTP seam written once (sharer/platforms/http.py): network failures classified by exception type
against real sockets, and the status/code tables every platform reads its answers through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
from harness import ctx, inject

from sharer.errors import Ambiguous, AuthExpired, PermanentError, RateLimited, TransientError
from sharer.platforms.http import DEFAULT_TABLE, ErrorTable, Rule, parse_retry_after, send


def test_refused_connection_is_transient_even_for_a_write(runtime, closed_port):
    with pytest.raises(TransientError) as info:
        send(ctx(runtime, "hook-a"), "POST", f"http://127.0.0.1:{closed_port}/x", data=b"{}")
    assert type(info.value) is TransientError and "could not connect" in str(info.value)


def test_unresolvable_host_is_transient(runtime):
    with pytest.raises(TransientError) as info:
        send(ctx(runtime, "hook-a"), "POST", "http://no-such-host.invalid/x", data=b"{}")
    assert type(info.value) is TransientError


def test_after_sending_a_write_is_ambiguous_and_an_idempotent_call_transient(emulators, runtime):
    emu, context = emulators["webhook"], ctx(runtime, "hook-a")
    context.timeout = 0.5
    for kind, needle in (("drop", "dropped"), ("timeout", "no answer")):
        inject(emu, kind=kind, seconds=2)
        with pytest.raises(Ambiguous, match=needle):
            send(context, "POST", emu.url + "/hooks/a", data=b"{}")
        inject(emu, kind=kind, seconds=2)
        with pytest.raises(TransientError) as info:
            send(context, "POST", emu.url + "/hooks/a", data=b"{}", idempotent=True)
        assert type(info.value) is TransientError


def _answer(status: int, headers: dict[str, str] | None = None) -> requests.Response:
    resp = requests.Response()
    resp.status_code, resp.headers = status, requests.structures.CaseInsensitiveDict(headers or {})
    return resp


def test_the_shared_status_table():
    table = DEFAULT_TABLE
    assert type(table.for_response(_answer(500), "m")) is TransientError
    assert type(table.for_response(_answer(408), "m")) is TransientError
    assert type(table.for_response(_answer(502), "m")) is Ambiguous
    assert type(table.for_response(_answer(504), "m", retry_safe=True)) is TransientError
    assert type(table.for_response(_answer(401), "m")) is AuthExpired
    assert type(table.for_response(_answer(403), "m")) is PermanentError
    limited = table.for_response(_answer(429, {"Retry-After": "12"}), "m")
    assert isinstance(limited, RateLimited) and limited.retry_after == 12 and limited.status == 429
    assert table.for_response(_answer(429), "m", retry_after=3.5).retry_after == 3.5


def test_a_platform_table_overrides_only_what_it_lists():
    table = ErrorTable(codes={7: Rule(RateLimited, "slow: {message}", retry_after=90.0),
                              8: Rule(PermanentError, lambda m: f"computed {m.upper()}")},
                       statuses={401: Rule(PermanentError, "{message} (tokens never expire)")},
                       other_code=Rule(PermanentError, "refused: {message}"), gateway=TransientError,
                       rate_limit_default=30.0)
    err = table.for_code(7, "x {braces} stay")
    assert isinstance(err, RateLimited) and err.retry_after == 90 and str(err) == "slow: x {braces} stay (code 7)"
    assert str(table.for_code(8, "m")) == "computed M (code 8)"
    assert str(table.for_code(99, "m")) == "refused: m (code 99)"
    assert type(table.for_response(_answer(401), "m")) is PermanentError
    assert type(table.for_response(_answer(502), "m")) is TransientError
    assert table.for_response(_answer(429), "m").retry_after == 30


def test_retry_after_as_an_http_date():
    when = datetime.now(UTC) + timedelta(seconds=120)
    assert 100 < parse_retry_after(format_datetime(when, usegmt=True), 5.0) <= 120
    assert parse_retry_after("soon", 5.0) == 5.0 and parse_retry_after(None, 5.0) == 5.0
