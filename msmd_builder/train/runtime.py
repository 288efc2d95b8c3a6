"""Where and how the networks run: device, threads, precision, CPU memory reuse.

Choices measured on a 2-core AVX-512 CPU without native bfloat16
(``bench/bench_train.py``, docs/training.md, "Throughput"):

* channels-last tensors (oneDNN's convolutions run 1.5 to 2.5 times faster on
  them than on NCHW tensors here, batch norm, ELU and pooling as fast);
* float32 unless the CPU has native bfloat16 (``precision="auto"``);
* no ``torch.compile``: its CPU code for a conv block's forward and backward
  was 15 % slower than eager, after minutes of compiling;
* freed memory stays with the process (:func:`keep_freed_memory`).
"""

from __future__ import annotations

import ctypes
import ctypes.util

import torch

from msmd_builder.core.errors import ConfigError
from msmd_builder.train import DEVICES, PRECISIONS

__all__ = [
    "DEVICES",
    "resolve_device",
    "configure",
    "use_bfloat16",
    "keep_freed_memory",
    "autocast",
]

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_memory_kept = False


def resolve_device(name: str) -> torch.device:
    """Return the torch device of a :data:`DEVICES` name, or say why it cannot be used.

    Raises
    ------
    ConfigError
        For an unknown name, or ``cuda`` where torch sees no CUDA device.
    """
    if name not in DEVICES:
        raise ConfigError(f"device must be one of {DEVICES}, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        build = torch.version.cuda
        why = f"torch {torch.__version__} is a CPU-only build" if build is None else "no GPU found"
        raise ConfigError(f"--device cuda: CUDA is not available here ({why}); use --device cpu")
    return torch.device(name)


def configure(device: torch.device, threads: int) -> None:
    """Set up a training run on ``device``: threads, CPU memory reuse, deterministic cuDNN.

    On a GPU, cuDNN is told to pick deterministic convolution algorithms and
    not to benchmark, so that a seed gives the same numbers there too (and a
    run resumed on the same GPU continues exactly).
    """
    torch.set_num_threads(threads)
    if device.type == "cpu":
        keep_freed_memory()
    else:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def use_bfloat16(precision: str, device: torch.device | str = "cpu") -> bool:
    """Whether ``precision`` (one of :data:`PRECISIONS`) means bfloat16 autocast on ``device``.

    ``auto`` picks bfloat16 on a CPU with native bfloat16 (AVX512-BF16 or AMX;
    emulated bfloat16 is slower than float32) and on a GPU that supports it.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision == "bfloat16"
    if torch.device(device).type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((probe is not None and probe()) or (amx is not None and amx()))


def autocast(device: torch.device, bfloat16: bool) -> torch.autocast:
    """Return the autocast context of a forward pass on ``device``."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16)


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory in the process instead of returning it to the kernel.

    A training step allocates and frees activations of up to 77 MB (100
    snippets x 24 maps x 80 x 100 floats).  glibc serves blocks that large
    with ``mmap`` and unmaps them when freed, so the kernel hands out fresh
    pages, zero-filled on first touch, at every step: a fifth of the CPU time
    went to page faults.  Serving them from the heap and not trimming it
    (``M_MMAP_MAX = 0``, ``M_TRIM_THRESHOLD`` = 2 GiB) reuses the same pages;
    the process keeps its peak memory until it exits.  Applies to the whole
    process, once; does nothing (returns False) where libc is not glibc.
    """
    global _memory_kept
    if _memory_kept:
        return True
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    _memory_kept = ok
    return ok
