"""Generated hostile input: schemathesis against the admin API's own OpenAPI schema, hypothesis
CloudEvents (binary and structured, random types and data) against predict, ingest and reload.

Why: hand-written cases only cover what someone thought of. The servers are the real function
processes on the real stack; the properties are "never a 5xx" and "nothing unhandled in the logs",
and for the admin API also "without the token, nothing but 401/403".
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import hypothesis
import orjson
import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from reliability_support import INGEST_TOKEN, PUBLISH_KEY, TOKEN, log_problems

from converge.event_signing import SIGNATURE_ATTRIBUTE, sign, signed_headers

pytestmark = pytest.mark.integration

AUTH = {"authorization": f"Bearer {TOKEN}"}
FUZZ = hyp_settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
EVENTS = hyp_settings(FUZZ, max_examples=150)


def _admin_operations(functions) -> list:
    """Every operation of the schema the running reload function serves at /openapi.json.

    The schemathesis pytest loader (``from_fixture``) does not run under pytest 9, so each
    operation's hypothesis strategy is used directly.
    """
    schemathesis = _schemathesis()
    schema = schemathesis.openapi.from_url(functions["reload"].url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6, [op.label for op in operations]
    return operations


def _schemathesis():
    """schemathesis (4.32.5 in the development environment; not yet a declared dependency)."""
    return pytest.importorskip("schemathesis", minversion="4.32")


def _strategy(operation, mode: str, settings):
    kwargs = {}
    if mode == "known-model" and "{name}" in operation.path:
        kwargs["path_parameters"] = {"name": settings.default_model}
    generation = "negative" if mode == "negative" else "positive"
    mode_enum = _schemathesis().GenerationMode(generation)
    return operation.as_strategy(generation_mode=mode_enum, **kwargs)


@pytest.mark.parametrize("mode", ["positive", "negative", "known-model"])
def test_admin_api_with_the_token_never_answers_5xx(functions, settings, mode):
    not_a_server_error = _schemathesis().checks.not_a_server_error
    seen: dict[tuple[str, int], int] = {}
    for operation in _admin_operations(functions):

        @FUZZ
        @given(case=_strategy(operation, mode, settings))
        def fire(case):
            response = case.call(headers=AUTH, timeout=30)
            key = (f"{case.method} {case.path}", response.status_code)
            seen[key] = seen.get(key, 0) + 1
            case.validate_response(response, checks=[not_a_server_error], headers=AUTH)

        try:
            fire()
        except hypothesis.errors.Unsatisfiable:
            assert mode == "negative"  # an operation without inputs has no invalid ones
    print(mode, seen)


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_admin_api_without_the_token_answers_only_401_or_403(functions, settings, mode):
    open_paths = {"/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"}
    for operation in _admin_operations(functions):
        if operation.path in open_paths:
            continue

        @FUZZ
        @given(
            case=_strategy(operation, mode, settings),
            forged=st.sampled_from([None, "Bearer nope", "x"]),
        )
        def fire(case, forged):
            headers = {} if forged is None else {"authorization": forged}
            response = case.call(headers=headers, timeout=30)
            if response.status_code == 404 and response.text == "Not Found":
                return  # functions-framework's router refused the path (e.g. a newline in it)
            # The guard runs before the body is parsed: nothing gets past it without the token.
            assert response.status_code in (401, 403), (
                case.method, case.formatted_path, response.status_code, response.text[:200],
            )  # fmt: skip

        try:
            fire()
        except hypothesis.errors.Unsatisfiable:
            assert mode == "negative"


# -- CloudEvents ------------------------------------------------------------------------------------
# Header values: printable ASCII without surrounding blanks (HTTP clients refuse those).
_printable = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40)
_int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_json = st.recursive(
    st.none()
    | st.booleans()
    | _int64
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
_vector = st.fixed_dictionaries(
    {
        "entity_id": st.text(min_size=1, max_size=20) | _json,
        "event_time": st.sampled_from(["2025-01-01T00:00:00Z", "2025-01-01T00:00:00", "yesterday"])
        | _json,
        "features": st.dictionaries(st.text(max_size=12), _json, max_size=6) | _json,
    }
)
_data = st.one_of(
    _json,
    st.fixed_dictionaries({"vectors": st.lists(_vector, max_size=4)}),
    _vector,
    st.fixed_dictionaries({"name": st.text(max_size=20) | _json, "version": _int64 | _json}),
    st.fixed_dictionaries(
        {"features": st.dictionaries(st.sampled_from(["AGE", "RACE", "PSA", "x"]), _json)}
    ),
    st.fixed_dictionaries(
        {"instances": st.lists(st.fixed_dictionaries({"entity_id": _json}), max_size=3)}
    ),
)
_scalar = st.none() | st.floats(-1e6, 1e6) | st.integers(-1000, 1000) | st.text(max_size=8)
_clean = st.one_of(  # well-formed data, so that the fuzz also reaches scoring and the upsert
    st.fixed_dictionaries(
        {"features": st.dictionaries(st.sampled_from(["AGE", "RACE", "PSA", "VOL", "x"]), _scalar)}
    ),
    st.fixed_dictionaries(
        {
            "vectors": st.lists(
                st.fixed_dictionaries(
                    {
                        "entity_id": st.text(
                            st.characters(min_codepoint=33), min_size=1, max_size=20
                        ),
                        "event_time": st.just("2025-03-01T00:00:00Z"),
                        "features": st.dictionaries(
                            st.text(min_size=1, max_size=10), _scalar, max_size=5
                        ),
                    }
                ),
                min_size=1,
                max_size=4,
            )
        }
    ),
    st.fixed_dictionaries(
        {"name": st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), "version": _int64}
    ),
)


def _known(model: str):
    """The production model's own reference: a reload of it re-validates and succeeds."""
    return st.fixed_dictionaries({"name": st.just(model), "version": st.just(1)})


_types = st.sampled_from(["features.ingest", "model.published", "predict.request", ""]) | _printable
_ROLE_TYPE = {
    "predict": "predict.request",
    "ingest": "features.ingest",
    "reload": "model.published",
}
_KEYS = {"ingest": INGEST_TOKEN, "reload": PUBLISH_KEY}  # predict's events are reads: unsigned


@st.composite
def cloudevents(draw, role: str, model: str):
    """(headers, body) of one CloudEvent: well-formed with random data, or broken in some way."""
    well_formed = draw(st.booleans())
    event_type = _ROLE_TYPE[role] if well_formed else draw(_types)
    data = draw(_clean | _data) if well_formed else draw(_data)
    if well_formed and role == "reload" and draw(st.booleans()):
        data = draw(_known(model))
    body = orjson.dumps(data)
    attrs = {"specversion": "1.0", "type": event_type, "source": draw(_printable) or "s",
             "id": draw(_printable) or "i"}  # fmt: skip
    if not well_formed:
        attrs["specversion"] = draw(st.sampled_from(["1.0", "0.3", "2", "x"]))
        if draw(st.booleans()):
            body = draw(st.sampled_from([body[:-1], b"", b"\xff\xfe", b"null"]))
        for key in draw(st.sets(st.sampled_from(sorted(attrs)), max_size=2)):
            del attrs[key]
    if well_formed and role in _KEYS:  # signed, so it reaches the handler
        attrs["time"] = datetime.now(UTC).isoformat()
        attrs[SIGNATURE_ATTRIBUTE] = sign(
            _KEYS[role], attrs["id"], event_type, attrs["source"], attrs["time"], data
        )
    if draw(st.booleans()):  # binary mode
        headers = {f"ce-{k}": v for k, v in attrs.items() if v}
        headers["ce-specversion"] = attrs.get("specversion", "1.0")
        headers["content-type"] = draw(st.sampled_from(["application/json", "text/plain"]))
        return headers, body
    envelope: dict = dict(attrs)
    if well_formed or draw(st.booleans()):
        envelope["data"] = data
    else:
        envelope["data_base64"] = draw(st.sampled_from(["eyJhIjogMX0=", "!!notbase64", ""]))
    envelope["datacontenttype"] = "application/json"
    return {"content-type": "application/cloudevents+json"}, orjson.dumps(envelope)


def _good_event(role: str, model: str) -> tuple[dict[str, str], bytes]:
    """One event each handler must accept: every run reaches the handler at least once."""
    data = {
        "predict": {"features": {"AGE": 65.0, "PSA": 10.0}},
        "ingest": {"vectors": [{"entity_id": "fuzz-known", "event_time": "2025-03-01T00:00:00Z", "features": {"x": 1}}]},
        "reload": {"name": model, "version": 1},
    }[role]
    return signed_headers(_KEYS.get(role, ""), _ROLE_TYPE[role], "fuzz", data, "known"), orjson.dumps(data)


@pytest.mark.parametrize("role", ["predict", "ingest", "reload"])
def test_random_cloudevents_never_get_a_5xx(functions, settings, role):
    url = functions[role].url
    seen: dict[int, int] = {}
    with httpx.Client(base_url=url, timeout=30.0) as client:

        @EVENTS
        @example(event=_good_event(role, settings.default_model), path="/events")
        @given(
            event=cloudevents(role, settings.default_model),
            path=st.sampled_from(["/", "/events", "/predict", "/x"]),
        )
        def fire(event, path):
            headers, body = event
            r = client.post(path, content=body, headers=headers)
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
            assert r.status_code < 500, (headers, body[:200], r.status_code, r.text[:300])
            if r.status_code >= 400:
                assert "error" in r.json()

        fire()
        assert client.get("/healthz").status_code == 200
    assert log_problems(functions[role]) == []
    print(role, seen)
    assert seen.get(200, 0) > 0, "no event was well-formed enough to reach the handler"
