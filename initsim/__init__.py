"""initsim: see what weight initialization does to a deep network, layer by layer."""

import os

# OpenBLAS's threads wait for their next multiply spinning, 2**28 cycles by default (a tenth of a
# second): at two BLAS threads on two cores, the one left spinning after each multiply took the
# core from the run's own work between multiplies (its weight draws, statistics and activations).
# 2**4 cycles, OpenBLAS's least, puts them to sleep at once; waking them costs microseconds a
# multiply. It counts only if set before numpy loads OpenBLAS: so here, before anything of
# initsim imports numpy, for the `initsim` command and any program that imports initsim first.
# A value the user's environment gives is kept.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

__version__ = "0.1.0"
