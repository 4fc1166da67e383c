"""Suite-wide settings."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="session")
def one_blas_thread():
    """The tests' matrices are small, and two OpenBLAS threads slow down manyfold whenever another
    process holds the second core (seen here: a 512 x 128 QR went from 10 ms to 3 s). Benchmarks,
    not tests, measure the threads."""
    with threadpool_limits(1):
        yield
