"""Shared pytest setup: float64 everywhere (the ideal reference runs in x64)."""

import jax

jax.config.update("jax_enable_x64", True)


# --------------------------------------------------------------- shared NIR paper files
import os  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def shared_data_dir() -> Path:
    """The folder of NIR paper files: ``$NIRSIM_SHARED_DATA`` if set (the
    ``nir-paper`` folder itself, or a ``shared`` or ``data`` folder above it), else
    ``../shared/data/nir-paper`` next to the repository (never copied into it)."""
    env = os.environ.get("NIRSIM_SHARED_DATA")
    if env:
        base = Path(env)
        for sub in ("data/nir-paper", "nir-paper"):
            if (base / sub).is_dir():
                return base / sub
        return base
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "nir-paper"


@pytest.fixture
def shared_data() -> Path:
    """Path of the NIR paper files; skips the test when the folder is absent."""
    folder = shared_data_dir()
    if not folder.is_dir():
        pytest.skip(f"NIR paper files not found at {folder}")
    return folder
