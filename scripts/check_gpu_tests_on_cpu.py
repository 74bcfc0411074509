"""Run tests/test_gpu.py on the CPU: checks the *tests* (their APIs, fixtures and tolerances) where no GPU is.

The ``gpu`` tests compare a device against the CPU; with ``REPRO_GPU_TEST_DEVICE=cpu`` both sides are the CPU, so a
pass here says the tests are well-formed, nothing about CUDA. Usage (from the repository root)::

    OMP_NUM_THREADS=1 python scripts/check_gpu_tests_on_cpu.py [-k expr] [-m "gpu and not slow"]
"""

from __future__ import annotations

import os
import sys

import pytest


class _RunWithoutCuda:
    """Drops the "needs a CUDA device" skip that tests/conftest.py adds when CUDA is absent."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            item.own_markers = [m for m in item.own_markers
                                if not (m.name == "skip" and m.kwargs.get("reason") == "needs a CUDA device")]


if __name__ == "__main__":
    os.environ.setdefault("REPRO_GPU_TEST_DEVICE", "cpu")
    args = sys.argv[1:] or ["-m", "gpu"]
    sys.exit(pytest.main(["tests/test_gpu.py", "-q", "-p", "no:cacheprovider", *args], plugins=[_RunWithoutCuda()]))
