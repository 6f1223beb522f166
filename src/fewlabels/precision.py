"""The arithmetic a run trains in: ``precision: fp32 | bf16 | auto`` (a key every method takes).

``bf16`` is PyTorch's standard mixed precision: the forward pass and the losses run under
``torch.autocast(device_type, dtype=torch.bfloat16)``, the backward pass and the optimiser step
outside it, and the weights and the optimiser state stay fp32 (bf16 keeps fp32's exponent range,
so no gradient scaler is needed). ``auto`` is bf16 where the device computes it natively (a CUDA
GPU with bf16 units; a CPU with the avx512_bf16 or amx_bf16 instructions) and fp32 elsewhere: a CPU
without them emulates bf16 and is slower in it, not faster (docs/speed.md).

``fp32`` enters no autocast context at all, so an fp32 run is the same computation as before the
setting existed, bit for bit.
"""

from __future__ import annotations

import contextlib
from functools import lru_cache
from pathlib import Path

import torch

PRECISIONS = ("fp32", "bf16", "auto")
# The x86 CPU flags (/proc/cpuinfo) whose instructions multiply bf16 natively: AVX-512 BF16's
# dot products, and AMX's tile multiply (oneDNN, which torch's bf16 matmuls call, uses either).
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def parse_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of the first processor listed in ``cpuinfo`` (the text of /proc/cpuinfo)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 spells it flags, ARM Features
            return frozenset(value.split())
    return frozenset()


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags as Linux lists them (empty where there is no /proc/cpuinfo)."""
    try:
        return parse_flags(Path("/proc/cpuinfo").read_text())
    except OSError:
        return frozenset()


def cpu_bf16_flags() -> list[str]:
    """Which of ``CPU_BF16_FLAGS`` this CPU has (recorded with a benchmark)."""
    return [f for f in CPU_BF16_FLAGS if f in cpu_flags()]


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware: a CUDA GPU that has bf16 units (not emulation),
    a CPU with avx512_bf16 or amx_bf16. Other devices: no (``auto`` then stays fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        # torch's own capability (AVX2, AVX512, ...) does not say bf16, and ATEN_CPU_CAPABILITY can
        # lower it below what oneDNN uses; only the CPU's flags say whether bf16 is native.
        return bool(cpu_bf16_flags())
    return False


def check(value) -> None:
    """A ValueError that names the setting and its values, for anything but one of ``PRECISIONS``."""
    if value not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {value!r}")


def resolve(value: str, device: torch.device) -> str:
    """``value`` ("fp32", "bf16" or "auto") as the run will train: "fp32" or "bf16"."""
    check(value)
    if value == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return value


def autocast(resolved: str, device: torch.device):
    """A fresh context for one step (or one evaluation) in ``resolved`` precision: bf16 autocast,
    or for fp32 a context that does nothing (no autocast state is touched)."""
    if resolved == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def outside_autocast(device_type: str):
    """Autocast switched off for the duration, when it is on: where a method back-propagates and
    steps its optimiser (PyTorch's recipe: autocast covers the forward pass and the loss only).
    When autocast is off (every fp32 run) nothing is entered."""
    if not torch.is_autocast_enabled(device_type):
        yield
        return
    with torch.autocast(device_type=device_type, enabled=False):
        yield
