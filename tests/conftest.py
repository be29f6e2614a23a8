"""Shared pytest set-up: a clean Brian2 for every test, caches kept across runs."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Cython extensions and the cuRAND link folder persist across test runs here
# (ignored by git); an SDSNN_CACHE set by the caller wins.
os.environ.setdefault("SDSNN_CACHE", str(REPO_ROOT / ".cache"))


@pytest.fixture(autouse=True)
def _clean_brian():
    """Reset Brian2 (device, preferences, defaultclock) before and after each test."""
    from sdsnn_bio.devices import reset_brian

    reset_brian()
    yield
    reset_brian()


# Property-based tests explore new random cases on every local run; in CI they
# replay a fixed (derandomized) set of the same size, so a landing never depends on luck.
try:
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("ci", derandomize=True, print_blob=True)
    if os.environ.get("CI"):
        _hyp_settings.load_profile("ci")
except ImportError:  # hypothesis is a test dependency; without it the fuzz tests are not collected
    pass
