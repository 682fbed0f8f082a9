"""Image arguments as users type them: files, folders and glob patterns, expanded to files."""

from __future__ import annotations

import glob
from pathlib import Path

from .errors import SpecError
from .train.datasets import IMAGE_SUFFIXES

GLOB_CHARACTERS = frozenset("*?[")


def expand_image_arguments(arguments: list[str]) -> list[str]:
    """Each argument as the image files it names, in order, without repeats: a file as is; a
    folder as the images in it and its subfolders (by suffix, sorted; hidden ones skipped);
    a glob pattern (`*`, `?`, `[...]`, `**` for any depth) as its sorted matches.

    Raises a SpecError naming every argument that names nothing."""
    files: dict[str, None] = {}
    missing: list[str] = []
    for argument in arguments:
        found = _files_of(argument)
        if not found:
            missing.append(argument)
        files.update(dict.fromkeys(found))
    if missing:
        raise SpecError(
            "no such image, folder of images, or pattern matching any: " + ", ".join(missing),
            hint="give image files (" + ", ".join(sorted(IMAGE_SUFFIXES)) + "), folders "
            "holding them, or quoted patterns such as 'photos/*.jpg'",
        )
    return list(files)


def _files_of(argument: str) -> list[str]:
    path = Path(argument)
    if path.is_dir():
        return [str(p) for p in sorted(path.rglob("*")) if _is_visible_image(p, path)]
    if path.exists():
        return [argument]
    if GLOB_CHARACTERS & set(argument):
        return sorted(m for m in glob.glob(argument, recursive=True) if Path(m).is_file())
    return []


def _is_visible_image(path: Path, root: Path) -> bool:
    hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
    return not hidden and path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
