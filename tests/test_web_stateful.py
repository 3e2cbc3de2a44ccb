"""Stateful schemathesis over every endpoint: sequences of calls (create a share, then read, patch,
cancel, retry its deliveries…, linked by the ids the API returns, inferred from /openapi.json) never
get a 5xx. Driven in-process over ASGI as an editor with a bearer token; the live event stream is left
out (an endless response), ``/healthz`` has its own tests.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis.errors import FlakyStrategyDefinition
from schemathesis.checks import not_a_server_error
from web_support import bearer


def test_stateful_sequences_never_get_a_5xx(web_app):
    schema = (schemathesis.openapi.from_asgi("/openapi.json", web_app)
              .exclude(path="/api/events").exclude(path="/healthz"))
    headers = bearer(web_app, "editor")
    seen: list[int] = []
    labels: set[str] = set()

    class Machine(schema.as_state_machine()):
        def before_call(self, case):
            """Random account names are all 422; real ones let a share be made and then followed."""
            if case.operation.label == "POST /api/shares" and isinstance(case.body, dict):
                case.body["accounts"], case.body["texts"] = ["hook-a"], {}
                case.body.pop("next_slot", None)
                if isinstance(case.body.get("article"), dict):
                    case.body["article"]["url"] = "https://news.example.com/stateful"
                    case.body["article"].pop("image", None)

        def get_call_kwargs(self, case):
            return {"headers": headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            seen.append(response.status_code)
            if response.status_code < 300:
                labels.add(case.operation.label)
            case.validate_response(response, checks=[not_a_server_error], transport_kwargs=kwargs or None)

    try:
        Machine.run(settings=settings(max_examples=40, stateful_step_count=8, deadline=None, database=None,
                                      suppress_health_check=list(HealthCheck)))
    except FlakyStrategyDefinition:
        # which links can be followed depends on what Redis already holds (a real, growing store), so
        # hypothesis may find a replay going another way and stop early; every step that did run is
        # still checked below, and a real 5xx fails inside the run with its own error, not this one
        pass
    assert len(seen) >= 40 and all(code < 500 for code in seen), seen
    assert labels, "no call succeeded at all"  # which operations a run reaches varies from run to run
