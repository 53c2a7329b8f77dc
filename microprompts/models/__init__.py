"""Model access: specs, the embedded local model, the call cache, retries and usage accounting."""

from microprompts.models.cache import CacheError, CallCache, default_cache_path, request_key
from microprompts.models.client import Completion, ModelCaller, completion_key
from microprompts.models.errors import BudgetExceeded, ModelCallError, ModelSpecError
from microprompts.models.local import LocalChatModel, smollm2_path
from microprompts.models.retry import is_transient
from microprompts.models.spec import ModelLike, model_identity, resolve_model
from microprompts.models.usage import Usage, UsageMeter

__all__ = [
    "BudgetExceeded",
    "CacheError",
    "CallCache",
    "Completion",
    "LocalChatModel",
    "ModelCallError",
    "ModelCaller",
    "ModelLike",
    "ModelSpecError",
    "Usage",
    "UsageMeter",
    "completion_key",
    "default_cache_path",
    "is_transient",
    "model_identity",
    "request_key",
    "resolve_model",
    "smollm2_path",
]
