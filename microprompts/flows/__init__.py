"""How steps connect and run: Flow, validation, artifacts and adoption of LangGraph graphs."""

from microprompts.flows.artifact import ArtifactError, content_hash
from microprompts.flows.flow import Branch, Flow, RouterError
from microprompts.flows.validate import FlowValidationError

__all__ = ["ArtifactError", "Branch", "Flow", "FlowValidationError", "RouterError", "content_hash"]
