"""Fixtures for the fakes' own tests."""

from tests.fakes.fixtures import fake_openai, llama_server_url  # noqa: F401
