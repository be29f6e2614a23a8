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
