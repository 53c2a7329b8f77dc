"""OPENAI_API_KEY goes only to OpenAI or to a base URL the user named: a URL that only an artifact names gets none."""

from __future__ import annotations

from pathlib import Path

import pytest

import microprompts.models.spec as spec
from microprompts.flows import Flow
from microprompts.models import resolve_model
from microprompts.nodes import MicroPrompt, Runtime

KEY = "sk-test-secret-0123456789"
URL = "http://127.0.0.1:9/v1"


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setattr(spec, "_ARTIFACT_URLS", set())
    monkeypatch.setattr(spec, "_USER_URLS", set())
    monkeypatch.setattr(spec, "_RESOLVED", {})


def _key(model: object) -> str:
    return model.openai_api_key.get_secret_value()  # type: ignore[attr-defined]


def _artifact_naming(tmp_path: Path, model: str) -> Flow:
    flow = Flow("keyed").then(MicroPrompt("answer", task="Answer.", inputs=["question"], model=model))
    path = tmp_path / "flow.json"
    flow.save(str(path))
    return Flow.load(str(path))


def test_a_url_the_user_names_in_python_gets_the_key() -> None:
    assert _key(resolve_model(f"openai:m@{URL}")) == KEY


def test_a_url_named_only_by_an_artifact_gets_no_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    loaded = _artifact_naming(tmp_path, f"openai:m@{URL}")
    model = Runtime().model_for(loaded.micro_prompts()[0].params.model)
    assert _key(model) != KEY and KEY not in caplog.text
    assert "named only by an artifact" in caplog.text


def test_naming_the_url_on_the_command_line_or_as_the_default_model_sends_the_key(tmp_path: Path) -> None:
    loaded = _artifact_naming(tmp_path, f"openai:m@{URL}")
    runtime = Runtime(model=f"openai:other@{URL}/")  # the user's --model names the same server
    assert _key(runtime.model_for(loaded.micro_prompts()[0].params.model)) == KEY
    assert _key(resolve_model(f"openai:m@{URL}", trust=True)) == KEY
