"""The compiled inner loops (``_kernels.c``), when the install could build them.

They are an optional speed-up with the same results: the NumPy code paths stay, and run when the
extension is missing or ``CONVERGE_MOJO_KERNEL=numpy`` is set (for comparison in benchmarks).
Callers read ``kernels`` at call time, so a test can switch it off.
"""

from __future__ import annotations

import os


def load_kernels():
    if os.environ.get("CONVERGE_MOJO_KERNEL", "c") == "numpy":
        return None
    try:
        from . import _kernels
    except ImportError:
        return None
    return _kernels


kernels = load_kernels()

#: the links a one-row plan applies itself (``_kernels.c``: LINK_*)
PLAN_LINKS = {"identity": 0, "log": 1, "logit": 2}
#: what a tree plan makes of its forest's sum (``_kernels.c``: GBM_*, DRF_*)
GBM_BINOMIAL, GBM_MULTINOMIAL2, GBM_REGRESSION, DRF_REGRESSION, DRF_BINOMIAL = range(5)
