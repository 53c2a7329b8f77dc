"""ModelCaller: the call cache's key, retries and backoff, Retry-After, usage, budget, json_schema downgrade."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from microprompts import CallCache, ModelCaller, resolve_model
from microprompts.models import BudgetExceeded, ModelCallError, UsageMeter, is_transient, request_key
from microprompts.models.spec import model_identity
from microprompts.models.usage import Usage
from microprompts.testing import ScriptedChatModel
from tests.fakes.openai_server import FaultSchedule

MESSAGES = [SystemMessage(content="Say a label."), HumanMessage(content="text: x")]
SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}


def http_error(
    cls: type[openai.APIStatusError], status: int, headers: dict | None = None, message: str = ""
) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx.Response(status, headers=headers or {}, request=request)
    return cls(f"HTTP {status}{message}", response=response, body=None)


FORMAT_REJECTED = ": response_format json_schema is not supported"


@pytest.fixture
def sleeps(monkeypatch):
    """Record backoff sleeps instead of sleeping."""
    slept: list[float] = []
    monkeypatch.setattr("microprompts.models.client.time.sleep", slept.append)
    return slept


# --- cache key -------------------------------------------------------------------------------------------------
def test_request_key_is_canonical():
    assert request_key({"a": 1, "b": [1, 2]}) == request_key({"b": [1, 2], "a": 1})
    assert request_key({"a": 1}) != request_key({"a": 2})


BASE = dict(schema=SCHEMA, temperature=0.0, max_tokens=64, sample=0)


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.5},
        {"max_tokens": 65},
        {"sample": 1},
        {"schema": None},
        {"schema": {**SCHEMA, "required": []}},
        {"messages": [MESSAGES[0], HumanMessage(content="text: y")]},
        {"messages": [SystemMessage(content="Say a label!"), MESSAGES[1]]},
        {"messages": MESSAGES[1:]},
    ],
)
def test_the_cache_key_changes_with_every_part_of_the_request(change):
    model = ScriptedChatModel(replies=['{"label": "a"}'], repeat_last=True)
    caller = ModelCaller(cache=CallCache(":memory:"))
    caller.complete(model, MESSAGES, **BASE)
    again = caller.complete(model, MESSAGES, **BASE)
    assert again.cached and model.call_count == 1
    request = {**BASE, "messages": MESSAGES, **change}
    messages = request.pop("messages")
    assert not caller.complete(model, messages, **request).cached
    assert model.call_count == 2


def test_the_cache_key_changes_with_the_model_identity():
    cache = CallCache(":memory:")
    one = ScriptedChatModel(name="one", replies=["1"])
    two = ScriptedChatModel(name="two", replies=["2"])
    assert ModelCaller(cache=cache).complete(one, MESSAGES).text == "1"
    assert ModelCaller(cache=cache).complete(two, MESSAGES).text == "2"
    same_name = ScriptedChatModel(name="one", replies=["never"])
    hit = ModelCaller(cache=cache).complete(same_name, MESSAGES)
    assert hit.cached and hit.text == "1" and same_name.call_count == 0


def test_the_node_name_and_meter_are_not_part_of_the_key():
    model = ScriptedChatModel(replies=["x"])
    caller = ModelCaller(cache=CallCache(":memory:"))
    caller.complete(model, MESSAGES, node="a")
    assert caller.complete(model, MESSAGES, node="b", meter=UsageMeter()).cached


def test_the_cache_persists_across_instances(tmp_path):
    model = ScriptedChatModel(replies=["hello"], usage={"input_tokens": 5, "output_tokens": 1})
    first = CallCache(tmp_path / "c.sqlite")
    ModelCaller(cache=first).complete(model, MESSAGES)
    first.close()
    reopened = CallCache(tmp_path / "c.sqlite")
    hit = ModelCaller(cache=reopened).complete(model, MESSAGES)
    assert hit.cached and hit.text == "hello" and hit.prompt_tokens == 5 and len(reopened) == 1


def test_a_truncated_sampled_reply_is_not_cached():
    model = ScriptedChatModel(replies=['{"label": "a', '{"label": "a"}'], finish_reason="length")
    caller = ModelCaller(cache=CallCache(":memory:"))
    assert caller.complete(model, MESSAGES, temperature=0.7).finish_reason == "length"
    assert not caller.complete(model, MESSAGES, temperature=0.7).cached and model.call_count == 2


def test_a_truncated_deterministic_reply_is_cached():
    model = ScriptedChatModel(replies=['{"label": "a'], finish_reason="length")
    caller = ModelCaller(cache=CallCache(":memory:"))
    assert caller.complete(model, MESSAGES).finish_reason == "length"
    again = caller.complete(model, MESSAGES)
    assert again.cached and again.text == '{"label": "a' and model.call_count == 1


# --- retries ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "exc, transient",
    [
        (http_error(openai.RateLimitError, 429), True),
        (http_error(openai.InternalServerError, 500), True),
        (http_error(openai.InternalServerError, 503), True),
        (http_error(openai.BadRequestError, 400), False),
        (http_error(openai.AuthenticationError, 401), False),
        (openai.APITimeoutError(request=httpx.Request("POST", "http://x")), True),
        (openai.APIConnectionError(request=httpx.Request("POST", "http://x")), True),
        (httpx.ConnectError("refused"), True),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (ValueError("bad"), False),
        (KeyError("x"), False),
    ],
)
def test_is_transient_classifies_errors(exc, transient):
    assert is_transient(exc) is transient


def test_a_transient_error_is_retried_then_succeeds(sleeps):
    model = ScriptedChatModel(replies=[http_error(openai.InternalServerError, 500), TimeoutError(), "ok"])
    meter = UsageMeter()
    caller = ModelCaller(base_delay=0.5, max_delay=8.0)
    done = caller.complete(model, MESSAGES, node="n", meter=meter)
    assert done.text == "ok" and model.call_count == 3
    assert len(sleeps) == 2 and 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0
    assert (meter.total.calls, meter.total.failures) == (1, 2)
    assert caller.meter.by_node["n"].failures == 2


def test_a_non_transient_error_fails_fast_with_model_call_error(sleeps):
    model = ScriptedChatModel(replies=[http_error(openai.AuthenticationError, 401), "never"])
    with pytest.raises(ModelCallError, match="AuthenticationError") as info:
        ModelCaller().complete(model, MESSAGES)
    assert model.call_count == 1 and sleeps == []
    assert isinstance(info.value.__cause__, openai.AuthenticationError)


def test_retries_stop_after_max_attempts(sleeps):
    model = ScriptedChatModel(replies=[http_error(openai.RateLimitError, 429)], repeat_last=True)
    caller = ModelCaller(max_attempts=3)
    with pytest.raises(ModelCallError, match="RateLimitError"):
        caller.complete(model, MESSAGES)
    assert model.call_count == 3 and len(sleeps) == 2 and caller.meter.total.failures == 3


def test_backoff_doubles_and_is_capped(sleeps):
    model = ScriptedChatModel(replies=[TimeoutError()] * 5 + ["ok"])
    ModelCaller(max_attempts=6, base_delay=1.0, max_delay=4.0).complete(model, MESSAGES)
    caps = [1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(cap / 2 <= s <= cap for s, cap in zip(sleeps, caps, strict=True))


def test_retry_after_is_honoured(sleeps):
    model = ScriptedChatModel(replies=[http_error(openai.RateLimitError, 429, {"Retry-After": "7"}), "ok"])
    assert ModelCaller(base_delay=0.01).complete(model, MESSAGES).text == "ok"
    assert sleeps == [7.0]


def test_a_huge_retry_after_is_capped(sleeps):
    model = ScriptedChatModel(replies=[http_error(openai.RateLimitError, 429, {"retry-after": "3600"}), "ok"])
    ModelCaller().complete(model, MESSAGES)
    assert sleeps == [30.0]


def test_budget_is_checked_before_every_paid_call_but_not_for_cache_hits():
    paid = []

    def budget():
        if len(paid) >= 1:
            raise BudgetExceeded("budget of 1 call spent")
        paid.append(1)

    model = ScriptedChatModel(replies=["a", "b"])
    caller = ModelCaller(cache=CallCache(":memory:"), before_call=budget)
    caller.complete(model, MESSAGES)
    assert caller.complete(model, MESSAGES).cached  # free
    with pytest.raises(BudgetExceeded):
        caller.complete(model, MESSAGES[1:])
    assert model.call_count == 1


# --- usage -----------------------------------------------------------------------------------------------------
def test_usage_is_counted_per_node_and_on_the_given_meter():
    model = ScriptedChatModel(replies=["a", "b", "c"], usage={"input_tokens": 10, "output_tokens": 4})
    caller = ModelCaller(cache=CallCache(":memory:"))
    meter = UsageMeter()
    caller.complete(model, MESSAGES, node="x", meter=meter)
    caller.complete(model, MESSAGES, node="x", meter=meter)  # cached
    caller.complete(model, MESSAGES[1:], node="y")
    assert (meter.total.calls, meter.total.cached_calls, meter.total.tokens) == (1, 1, 14)
    total = caller.meter.snapshot()
    assert (total.calls, total.cached_calls, total.prompt_tokens, total.completion_tokens) == (2, 1, 20, 8)
    assert caller.meter.by_node["x"].cached_calls == 1 and caller.meter.by_node["y"].calls == 1


def test_usage_falls_back_to_an_estimate_when_the_model_reports_none():
    model = ScriptedChatModel(replies=["a fairly long reply text"], report_usage=False)
    done = ModelCaller().complete(model, MESSAGES)
    assert done.prompt_tokens > 0 and done.completion_tokens > 0


def test_a_meter_read_is_a_record_of_its_own():
    meter = UsageMeter()
    meter.add(Usage(calls=1, prompt_tokens=5, seconds=0.5), node="x")
    before = meter.total
    meter.add(Usage(failures=1), node="x")
    assert (before.calls, before.failures) == (1, 0)
    assert (meter.total.calls, meter.total.failures, meter.total.seconds) == (1, 1, 0.5)
    assert meter.by_node == {"x": Usage(calls=1, prompt_tokens=5, seconds=0.5, failures=1)}


def test_a_caller_with_no_cache_makes_no_key(monkeypatch):
    """Nothing reads the key then (no cache, no budget): neither it nor the model's identity is computed."""

    def refuse(*args, **kwargs):
        raise AssertionError("a key was made")

    monkeypatch.setattr("microprompts.models.client.completion_key", refuse)
    monkeypatch.setattr("microprompts.models.client.model_identity", refuse)
    model = ScriptedChatModel(replies=['{"label": "a"}'])
    assert ModelCaller(cache=None).complete(model, MESSAGES, schema=SCHEMA).text == '{"label": "a"}'


def test_a_budgeted_caller_keys_every_request_even_with_no_cache():
    from microprompts.optimizers.budget import BudgetedCaller

    assert BudgetedCaller.keys_requests and not ModelCaller.keys_requests


# --- structured output and the json_schema -> json_object downgrade -------------------------------------------
class ChatOpenAI(ScriptedChatModel):
    """Looks like langchain-openai's ChatOpenAI to the caller (it goes by class name)."""


def test_openai_models_get_a_json_schema_response_format():
    model = ChatOpenAI(replies=['{"label": "a"}'])
    ModelCaller().complete(model, MESSAGES, schema=SCHEMA)
    assert model.calls[0].response_format == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": SCHEMA, "strict": False},
    }


def test_other_models_get_no_response_format():
    model = ScriptedChatModel(replies=['{"label": "a"}'])
    ModelCaller().complete(model, MESSAGES, schema=SCHEMA)
    assert model.calls[0].response_format is None


def test_a_400_on_json_schema_downgrades_to_json_object_and_is_remembered(sleeps):
    model = ChatOpenAI(
        replies=[http_error(openai.BadRequestError, 400, message=FORMAT_REJECTED), '{"label": "a"}', '{"label": "b"}']
    )
    caller = ModelCaller()
    assert caller.complete(model, MESSAGES, schema=SCHEMA).text == '{"label": "a"}'
    assert [c.response_format["type"] for c in model.calls] == ["json_schema", "json_object"]
    assert model.calls[1].response_format == {"type": "json_object", "schema": SCHEMA}
    caller.complete(model, MESSAGES[1:], schema=SCHEMA)
    assert model.calls[2].response_format["type"] == "json_object"  # no second rejected attempt
    assert sleeps == [] and caller.meter.total.failures == 0


def test_a_400_without_a_schema_is_not_downgraded_and_fails_fast():
    model = ChatOpenAI(replies=[http_error(openai.BadRequestError, 400), "never"])
    with pytest.raises(ModelCallError, match="BadRequestError"):
        ModelCaller().complete(model, MESSAGES)
    assert model.call_count == 1


def test_a_400_after_the_downgrade_fails_with_model_call_error():
    bad = http_error(openai.BadRequestError, 400, message=FORMAT_REJECTED)
    model = ChatOpenAI(replies=[bad, bad, "never"])
    with pytest.raises(ModelCallError, match="BadRequestError"):
        ModelCaller().complete(model, MESSAGES, schema=SCHEMA)
    assert model.call_count == 2


def test_a_400_about_something_else_is_not_a_format_downgrade():
    """A context-length 400 on the first request must not switch the server to json_object for good."""
    model = ChatOpenAI(
        replies=[http_error(openai.BadRequestError, 400, message=": maximum context length exceeded"), '{"label": "a"}']
    )
    caller = ModelCaller()
    with pytest.raises(ModelCallError, match="context length"):
        caller.complete(model, MESSAGES, schema=SCHEMA)
    caller.complete(model, MESSAGES[1:], schema=SCHEMA)
    assert [c.response_format["type"] for c in model.calls] == ["json_schema", "json_schema"]


def test_a_500_naming_json_schema_downgrades_like_llama_cpp_server(sleeps):
    """llama_cpp.server answers a json_schema response_format with HTTP 500 and a validation error."""
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    rejected = openai.InternalServerError(
        "Error code: 500 - {'loc': ('body', 'response_format', 'type'), 'msg': \"Input should be 'text' or "
        "'json_object'\", 'input': 'json_schema'}",
        response=httpx.Response(500, request=request),
        body=None,
    )
    model = ChatOpenAI(replies=[rejected, '{"label": "a"}'])
    assert ModelCaller().complete(model, MESSAGES, schema=SCHEMA).text == '{"label": "a"}'
    assert [c.response_format["type"] for c in model.calls] == ["json_schema", "json_object"]
    assert sleeps == []


def test_concurrent_requests_to_a_server_that_rejects_json_schema_cost_one_rejection(fake_openai):
    """Until the format is settled, structured requests go out one at a time: 8 in flight, 1 rejected."""
    server = fake_openai(lambda request: '{"label": "a"}', reject_json_schema=True, reject_status=500)
    model = resolve_model(f"openai:fake-model@{server.base_url}")
    caller = ModelCaller(base_delay=0.0)
    messages = [[HumanMessage(content=f"row {i}")] for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        done = list(pool.map(lambda m: caller.complete(model, m, schema=SCHEMA), messages))
    assert [d.text for d in done] == ['{"label": "a"}'] * 8
    kinds = [(rf or {}).get("type") for rf in server.response_formats]
    assert kinds.count("json_schema") == 1 and kinds.count("json_object") == 8


def test_requests_waiting_on_the_probe_go_out_in_parallel_once_it_settles():
    """8 structured requests at once to a slow server that takes json_schema: the first goes alone, the 7 that
    waited behind it then run concurrently (not one at a time)."""
    active, peak, lock = [0], [0], threading.Lock()

    def slow(messages):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.2)
        with lock:
            active[0] -= 1
        return '{"label": "a"}'

    model = ChatOpenAI(replies=slow)
    caller = ModelCaller(base_delay=0.0)
    messages = [[HumanMessage(content=f"row {i}")] for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda m: caller.complete(model, m, schema=SCHEMA), messages))
    assert peak[0] >= 4
    assert all(c.response_format["type"] == "json_schema" for c in model.calls) and model.call_count == 8
    assert caller._format_probe(model, model_identity(model), SCHEMA) is None  # settled: no more probing


def test_an_ordinary_500_is_retried_not_downgraded(sleeps):
    model = ChatOpenAI(replies=[http_error(openai.InternalServerError, 500), '{"label": "a"}'])
    ModelCaller().complete(model, MESSAGES, schema=SCHEMA)
    assert [c.response_format["type"] for c in model.calls] == ["json_schema", "json_schema"]
    assert len(sleeps) == 1


@pytest.mark.parametrize("status", [400, 500])
def test_the_downgrade_through_a_real_chat_openai_client_and_fake_server(fake_openai, status):
    from microprompts import resolve_model

    server = fake_openai(lambda request: '{"label": "a"}', reject_json_schema=True, reject_status=status)
    model = resolve_model(f"openai:fake-model@{server.base_url}")
    done = ModelCaller(base_delay=0.0).complete(model, MESSAGES, schema=SCHEMA)
    assert done.text == '{"label": "a"}'
    kinds = [(rf or {}).get("type") for rf in server.response_formats]
    assert kinds == ["json_schema", "json_object"]


def test_a_compatible_server_gets_max_tokens_in_the_body_as_well(fake_openai):
    # langchain-openai renames max_tokens to max_completion_tokens; llama_cpp.server reads only max_tokens and,
    # without it, generates to the end of its context.
    server = fake_openai(lambda request: '{"label": "a"}')
    model = resolve_model(f"openai:fake-model@{server.base_url}")
    model.extra_body = {"top_k": 20}
    ModelCaller().complete(model, MESSAGES, schema=SCHEMA, max_tokens=77)
    body = server.requests[0]
    assert body["max_tokens"] == 77
    assert body["max_completion_tokens"] == 77
    assert body["top_k"] == 20


def test_openai_itself_gets_only_max_completion_tokens():
    from langchain_openai import ChatOpenAI as RealChatOpenAI

    from microprompts.models.spec import is_compatible_server

    assert not is_compatible_server(RealChatOpenAI(model="gpt-4o-mini", api_key="sk-test"))
    assert not is_compatible_server(
        RealChatOpenAI(model="gpt-4o-mini", api_key="sk-test", base_url="https://api.openai.com/v1")
    )
    assert is_compatible_server(RealChatOpenAI(model="q", api_key="x", base_url="http://127.0.0.1:8080/v1"))


def test_a_structured_reply_a_server_cut_at_its_limit_is_a_reply_paid_once(fake_openai) -> None:
    # langchain-openai raises openai's LengthFinishReasonError for it; on a 200 response that read as garbled, and
    # each retry paid for the same cut reply again
    reply = '{"facts": ["one sentence", "another sentence", "a third one"]}'
    server = fake_openai(lambda request: reply, FaultSchedule.sequence(["truncate"]))
    model = resolve_model(f"openai:fake@{server.base_url}")
    caller = ModelCaller(cache=CallCache(":memory:"), base_delay=0.0)
    done = caller.complete(model, MESSAGES, schema=SCHEMA, max_tokens=16)
    assert done.finish_reason == "length" and done.text == reply[: len(reply) // 2]
    assert server.calls == 1 and caller.meter.total.failures == 0
    again = caller.complete(model, MESSAGES, schema=SCHEMA, max_tokens=16)
    assert again.cached and again.text == done.text and server.calls == 1
