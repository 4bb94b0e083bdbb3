"""Helpers shared by the benchmark scripts: timing and table printing."""

from __future__ import annotations

import platform
import statistics
import time

import jax


def timeit(fn, *, repeats: int = 5, warmup: int = 1) -> tuple[float, float]:
    """(first-call seconds, median seconds of ``repeats`` calls after ``warmup``)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def machine() -> str:
    dev = jax.devices()[0]
    return (
        f"{platform.processor() or platform.machine()}, {dev.platform} "
        f"({dev.device_kind}), jax {jax.__version__}, python {platform.python_version()}"
    )


def table(title: str, header: list[str], rows: list[list]) -> str:
    """A Markdown table."""

    def fmt(x):
        if isinstance(x, float):
            return f"{x:.4g}"
        return str(x)

    lines = [
        f"### {title}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(fmt(x) for x in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"
