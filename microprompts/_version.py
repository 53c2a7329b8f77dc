"""The installed package's version, from its metadata (one source: pyproject.toml)."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("microprompts")
except PackageNotFoundError:  # run from a source tree that was never installed
    VERSION = "0.0.0+unknown"
