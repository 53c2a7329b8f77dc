"""How steps connect and run: Flow, validation, artifacts, adoption of LangGraph graphs, and addresses of parts."""

from microprompts.flows.address import (
    Address,
    MutationViolation,
    address_values,
    check_mutation,
    covers,
    is_frozen,
    touched,
)
from microprompts.flows.artifact import ArtifactError, content_hash
from microprompts.flows.flow import Branch, Flow, RouterError
from microprompts.flows.validate import FlowValidationError

__all__ = [
    "Address",
    "ArtifactError",
    "Branch",
    "Flow",
    "FlowValidationError",
    "MutationViolation",
    "RouterError",
    "address_values",
    "check_mutation",
    "content_hash",
    "covers",
    "is_frozen",
    "touched",
]
