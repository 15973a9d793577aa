"""imagepipe: uploads in, web-ready variants in S3 within 30 seconds.

This package is the processing core shared by every role: variant specs,
geometry, the step pipeline that renders variants, and typed errors. The
roles (`imagepipe.service`, `imagepipe.consumer`, `imagepipe.operator`)
import it; it imports none of them.
"""

import os

# numpy's matrices here (placeholders, saliency) are a few hundred numbers:
# OpenBLAS's thread pool only costs, 30 ms of CPU at import and threads that
# oversubscribe the render workers. Set before any numpy import (every role
# imports this package first); an operator's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
