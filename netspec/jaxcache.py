"""netspec's caches, so that a second run does not redo work: JAX's persistent compilation
cache (`jax/`) and passed Flax checks of `netspec compile` (`checks/`).

Both live under `$NETSPEC_CACHE` (default `~/.cache/netspec`); set `NETSPEC_CACHE=off` to
disable them. Only programs that took over a second to compile are stored.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_folder(name: str) -> Path | None:
    """`$NETSPEC_CACHE/name` (default `~/.cache/netspec/name`), or None when caching is off."""
    setting = os.environ.get("NETSPEC_CACHE", "")
    if setting.lower() in ("off", "0", "false", "no"):
        return None
    return (Path(setting) if setting else Path.home() / ".cache" / "netspec") / name


def enable_compilation_cache() -> Path | None:
    """Point JAX's persistent cache at netspec's folder (once per process); its path or None."""
    folder = cache_folder("jax")
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home: run without the cache
    import jax

    if jax.config.jax_compilation_cache_dir is None:
        jax.config.update("jax_compilation_cache_dir", str(folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    return folder
