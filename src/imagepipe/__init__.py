"""imagepipe: uploads in, web-ready variants in S3 within 30 seconds.

This package is the processing core shared by every role: variant specs,
geometry, the step pipeline that renders variants, and typed errors. The
roles (`imagepipe.service`, `imagepipe.consumer`, `imagepipe.operator`)
import it; it imports none of them.
"""

__version__ = "0.1.0"
