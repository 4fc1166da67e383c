"""Suite-wide settings."""

import pytest
from hypothesis import HealthCheck, settings
from threadpoolctl import threadpool_limits

# Hypothesis times each example (200 ms deadline) and its data generation (a health check): on a
# loaded machine either fails a correct test. Property tests here check answers, never speed.
# Derandomized: the suite draws the same examples on every run and machine, so a red CI means a
# change broke something; looking for new failing cases is the fuzz scripts' job (tests/bench).
settings.register_profile("any_machine", deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("any_machine")


@pytest.fixture(autouse=True, scope="session")
def one_blas_thread():
    """The tests' matrices are small, and two OpenBLAS threads slow down manyfold whenever another
    process holds the second core (seen here: a 512 x 128 QR went from 10 ms to 3 s). Benchmarks,
    not tests, measure the threads."""
    with threadpool_limits(1):
        yield
