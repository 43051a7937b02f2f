"""Helpers every benchmark loader shares: reading JSON, checking records and images, and errors that name the file
and the item. The task types themselves live in :mod:`labclip_utils.tasks`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from labclip_utils.tasks import BenchmarkFormatError, ImageRef


def format_error(path: Path | str, item: object, problem: str) -> BenchmarkFormatError:
    """An error that says which file, which item and what was wrong."""
    where = f" (item {item})" if item is not None else ""
    return BenchmarkFormatError(f"{path}{where}: {problem}")


def check_images_exist(refs: Sequence[ImageRef], source: Path, items: Sequence[object]) -> None:
    """Fail early, naming the benchmark file and the first item whose image file is missing."""
    for ref, item in zip(refs, items, strict=True):
        if not Path(ref.path).is_file():
            raise format_error(source, item, f"image file {ref.path} is missing")


def read_json(path: Path) -> object:
    """JSON from ``path``, with an error that names the file when it is missing or broken."""
    try:
        data = path.read_bytes()
    except PermissionError as exc:
        raise BenchmarkFormatError(f"{path}: permission denied (the file, or a folder above it, is not readable "
                                   "by this user)") from exc
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise BenchmarkFormatError(f"{path}: file is missing") from exc
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BenchmarkFormatError(f"{path}: not UTF-8 text ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(f"{path}: not valid JSON ({exc})") from exc


def require(record: object, keys: Sequence[str], path: Path, item: object) -> None:
    """Raise a :class:`BenchmarkFormatError` unless ``record`` is a dict with every key."""
    if not isinstance(record, dict):
        raise format_error(path, item, f"expected an object, got {type(record).__name__}")
    missing = [k for k in keys if k not in record]
    if missing:
        raise format_error(path, item, f"missing key(s) {missing}")


def inside(root: Path, relative: str, source: Path, item: object) -> str:
    """``root / relative`` as a string, refusing paths that leave ``root`` (``../``, absolute paths): a downloaded
    annotation file must not make the book read files elsewhere on the machine."""
    if not isinstance(relative, str) or not relative:
        raise format_error(source, item, f"image path must be a non-empty string, got {relative!r}")
    if Path(relative).is_absolute() or ".." in Path(relative).parts:
        raise format_error(source, item, f"image path {relative!r} leaves the dataset folder")
    return str(Path(root) / relative)
