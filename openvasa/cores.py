"""How a process that runs live streams shares its cores.

A live stream runs each stage in a thread of its own (`openvasa.streaming`), and several
streams run at once. The math libraries would each add a pool of their own: OpenMP for
torch, OpenBLAS for numpy, OpenCV's for its filters. For the small products of a live frame
such a pool starts a team of a thread per core and, after the call, keeps those threads
spinning for the next one, on the cores that the other stages and streams need. On the
2-core machine that doubled the CPU time of a frame (30.9 ms → 15.9 ms with one thread each:
motion 15.6 → 8.9, render 8.3 → 4.1, watermark 3.8 → 1.3, JPEG 3.3 → 1.6), while the wall
time of each stage stayed the same. Offline rendering keeps the pools: there they help.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_done = False


def one_thread_per_call() -> None:
    """Make torch, numpy's BLAS and OpenCV compute each call in the calling thread, for the
    rest of the process (their settings are per process). Idempotent and thread-safe."""
    global _done
    with _lock:
        if _done:
            return
        # Loaded first, so that the limit reaches the pools they bring (scipy its own
        # OpenBLAS, CTranslate2 its own OpenMP): threadpoolctl sets those loaded already.
        import ctranslate2  # noqa: F401
        import cv2
        import scipy.linalg  # noqa: F401
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(1)
        threadpool_limits(1)  # every OpenBLAS and OpenMP in the process
        cv2.setNumThreads(1)
        _done = True
