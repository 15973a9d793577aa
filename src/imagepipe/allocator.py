"""Tune the C allocator: for a process that renders one image after another,
and for the ingest, which holds many upload buffers at once."""

from __future__ import annotations

import ctypes

# mallopt() parameters, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc's ceiling for the mmap threshold on 64-bit (half its 64 MiB heap size).
MMAP_THRESHOLD = 32 * 1024 * 1024
# Above a render's whole working set (decode, resize and libwebp's encoder
# buffers): about 30 MB for a 2-8 MP photo, 65 MB for a 3 MP RGBA PNG, whose
# next render faulted all of it in again under a 64 MiB threshold whenever
# the heap's layout left that much free at its top.
TRIM_THRESHOLD = 128 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Let the next image reuse the memory the last one freed.

    By default glibc hands each large buffer back to the kernel when it is
    freed (mmap'd chunks, and the heap top past a threshold that follows the
    last such chunk), so every image page-faults its decode, resize and
    encoder buffers in afresh: 3,700 faults and 8 ms of kernel time on an
    average 2-8 MP photo, 5-8 % of its CPU. With buffers up to 32 MiB on the
    heap and up to 128 MiB of free heap kept, a worker's RSS stays at its
    largest recent working set instead of falling between images.

    For render workers only (consumer pool, `imagepipe process`); returns
    False, changing nothing, where the C library is not glibc.
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    # Setting either threshold also stops glibc from moving them on its own.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


# Upload buffers and their copies are megabytes; anything this large is mapped on its own.
INGEST_MMAP_THRESHOLD = 1024 * 1024


def map_large_buffers() -> bool:
    """Give each upload buffer back to the kernel as soon as it is freed.

    glibc raises its mmap threshold to the size of the largest mapped chunk
    freed (up to 32 MiB), so after the first upload every later 10 MB buffer
    comes from the heap, where freed holes stay resident and growing a buffer
    copies it. The ingest's memory bound is the budget plus a base: a fixed
    1 MiB threshold keeps buffers mapped (grown in place by mremap, unmapped
    when freed). For the ingest; False, changing nothing, where the C
    library is not glibc.
    """
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, INGEST_MMAP_THRESHOLD))
