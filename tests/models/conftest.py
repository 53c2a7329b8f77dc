"""The fake OpenAI-compatible server fixture for the model room's tests."""

from tests.fakes.fixtures import fake_openai  # noqa: F401
