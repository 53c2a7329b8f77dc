"""Errors of the model room, each with one clear message."""


class ModelSpecError(ValueError):
    """A model spec that cannot be resolved (unknown scheme, missing file, missing extra)."""


class ModelCallError(RuntimeError):
    """A model call that failed after its retries; carries the reason."""


class BudgetExceeded(RuntimeError):
    """Raised before a paid call when the caller's budget is spent."""
