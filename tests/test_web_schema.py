"""Property-based API testing with schemathesis, driven by the app's own /openapi.json (ASGI, in-process).

Every documented operation gets generated valid and invalid requests as an editor (bearer token): none
may produce a 5xx, and every response must match its documented schema. Left out: ``/api/events`` (an
endless stream) and ``/healthz`` (503 is its documented answer when no worker runs; tested elsewhere).
(Operations are driven with hypothesis directly: schemathesis' pytest plugin does not run on pytest 9.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from web_support import bearer

EXAMPLES_PER_MODE = 20


@pytest.fixture(scope="module")
def api_schema(web_app):
    return (schemathesis.openapi.from_asgi("/openapi.json", web_app)
            .exclude(path="/api/events").exclude(path="/healthz"))


def operations(schema) -> list:
    return [result.ok() for result in schema.get_all_operations()]


ACCOUNTS = ["hook-a", "weibo-main", "x-main", "telegram-channel", "mastodon-main", "wechat-main", "wecom-news",
            "feishu-signed", "dingtalk-markdown"]


def with_real_accounts(case):
    """Random account names are all 422; give previews real ones, so composition itself gets fuzzed."""
    if isinstance(case.body, dict) and isinstance(case.body.get("texts"), dict):
        n = len(case.body.get("accounts") or []) % len(ACCOUNTS) + 1
        case.body["accounts"] = ACCOUNTS[:n]
        case.body["texts"] = dict(zip(ACCOUNTS, case.body["texts"].values()))
        case.body["accounts"] = sorted(set(case.body["accounts"]) | set(case.body["texts"]))
    return case


def test_schema_covers_the_api(api_schema):
    labels = {op.label for op in operations(api_schema)}
    assert "POST /api/shares" in labels and "PATCH /api/shares/{share_id}" in labels and len(labels) >= 12


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_never_answers_5xx_and_matches_its_schema(api_schema, web_app, mode):
    headers = bearer(web_app, "editor")
    checks = [not_a_server_error] + ([response_schema_conformance] if mode == GenerationMode.POSITIVE else [])
    for op in operations(api_schema):

        strategy = op.as_strategy(generation_mode=mode)
        if op.label == "POST /api/previews" and mode == GenerationMode.POSITIVE:
            strategy = strategy.map(with_real_accounts)  # random articles through the real composers

        @given(case=strategy)
        @settings(max_examples=EXAMPLES_PER_MODE, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            case.call_and_validate(headers=headers, checks=checks)

        try:
            run()
        except Unsatisfiable:  # negative mode, nothing to make invalid (e.g. GET /api/me has no input)
            assert mode == GenerationMode.NEGATIVE, op.label
        except Exception as e:
            raise AssertionError(f"{op.label} ({mode.value}): {e}") from e
