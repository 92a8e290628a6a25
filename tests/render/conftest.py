"""Fixtures for the render tests: run a test under a chosen per-row loop implementation."""

from __future__ import annotations

import pytest


@pytest.fixture
def kernel():
    """Run a test under a chosen per-row loop implementation ("numpy" or "numba"), restoring the mode after."""
    from ms2img.render.kernels import get_kernel, set_kernel

    previous = get_kernel()

    def use(mode: str) -> None:
        if mode == "numba":
            pytest.importorskip("numba")
        set_kernel(mode)

    yield use
    set_kernel(previous)
