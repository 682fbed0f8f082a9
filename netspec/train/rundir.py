"""A training run's folder: choosing it (`runs/<name>`, `_2`, ...), refusing to overwrite
one, replacing it when asked, and reading back its config.json."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SpecError
from ..load import YamlMap

if TYPE_CHECKING:
    from .loop import TrainOptions


RUNS = Path("runs")
"""Where a run without --out goes: `runs/<spec name>`, then `runs/<spec name>_2`, `_3`, ..."""


def check_run_dir(options: TrainOptions) -> None:
    """Refuse to overwrite an earlier run unless resuming it or told to (checks only)."""
    out = options.out
    if out is None:
        if options.resume:
            name = run_name(read_spec_data(options.spec), options.spec)
            earlier = numbered_runs(name)
            raise SpecError(
                "--resume continues a run: say which one",
                hint="netspec train --resume RUN (its own spec), or add --out RUN"
                + (f"; runs of {name}: {', '.join(map(str, earlier))}" if earlier else ""),
            )
        return
    if out.exists() and not out.is_dir():
        raise SpecError("exists and is not a folder", path=str(out))
    has_run = (out / "checkpoints").exists() or (out / "metrics.jsonl").exists()
    if has_run and options.overwrite and not options.resume:
        if not (out / "config.json").exists():
            raise SpecError("does not look like a netspec run; not deleting it", path=str(out))
        return
    if has_run and not options.resume:
        raise SpecError(
            "already holds a training run",
            path=str(out),
            hint="add --resume to continue it, --overwrite to replace it, or choose another --out",
        )
    if options.resume and not has_run:
        raise SpecError(
            "holds no training run to resume", path=str(out), hint="drop --resume to start one here"
        )


def claim_run_dir(options: TrainOptions, name: str) -> None:
    """Once the spec, options and data have passed: replace an old run if asked, create it;
    without --out, create the first free numbered folder for the spec `name` (`new_run_dir`)
    and set `options.out` to it."""
    out = options.out
    if out is None:
        options.out = new_run_dir(name)
        return
    if options.overwrite and not options.resume and (out / "config.json").exists():
        import shutil

        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def run_name(spec_data: Mapping[str, Any], spec: str) -> str:
    """A spec's name as a folder name: its `name:`, else its file's stem."""
    import re

    name = spec_data.get("name")
    if not isinstance(name, str) or not name.strip():
        name = Path(spec).stem
    return re.sub(r"[^\w.-]+", "_", name.strip()).strip("._") or "run"


def numbered_runs(name: str, root: Path = RUNS) -> list[Path]:
    """The existing `root/<name>`, `root/<name>_2`, ... in number order."""
    import re

    pattern = re.compile(rf"{re.escape(name)}(?:_(\d+))?")
    found = []
    if root.is_dir():
        for path in root.iterdir():
            match = pattern.fullmatch(path.name)
            if match and path.is_dir():
                found.append((int(match.group(1) or 1), path))
    return [path for _, path in sorted(found)]


def new_run_dir(name: str, root: Path = RUNS) -> Path:
    """Create and return the first of `root/<name>`, `root/<name>_2`, `root/<name>_3`, ...
    that does not exist (created with `mkdir`, so two runs starting together get two)."""
    number = 1
    while True:
        path = root / (name if number == 1 else f"{name}_{number}")
        try:
            path.mkdir(parents=True)
        except FileExistsError:
            number += 1
            continue
        except OSError as error:
            raise SpecError(
                f"cannot create the run directory: {error.strerror}", path=str(path)
            ) from None
        return path


def read_spec_data(spec: str) -> YamlMap:
    """The spec's YAML tree, for its `training:` section and `vars` (no checks: compiling the
    spec reports its errors; a file that is not a mapping reads as an empty one)."""
    from ..load import load_yaml
    from ..specfile import read_source

    filename, data = read_source(spec)
    tree = load_yaml(data, filename)
    return tree if isinstance(tree, YamlMap) else YamlMap()


def load_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.json"
    if not path.exists():
        raise SpecError("is not a training run (no config.json)", path=str(run_dir))
    return json.loads(path.read_text(encoding="utf-8"))
