"""The paper's synthetic benchmarks as choice tasks: CLEVR-style scenes, PUG:SPAR and PUG:SPARE.

A folder in any of the three real layouts (read by :func:`labclip_utils.scenes.load_scenes`) becomes the
swap test: each scene's caption against its attribute-swapped negative. As in LABCLIP's code, CLEVR counts
ties as correct and skips scenes whose negative would equal the caption; PUG counts ties as wrong.
"""

from __future__ import annotations

from pathlib import Path

from labclip_utils.scenes import load_scenes
from labclip_utils.scenes.formats import SPAR_FILE, SPARE_FILE
from labclip_utils.tasks import ChoiceTask, swap_task


def _has_scenes(folder: Path) -> bool:
    return any((folder / name).is_file() for name in (SPAR_FILE, SPARE_FILE)) or any(folder.glob("output_*obj.csv"))


def dataset_folder(root: str | Path) -> Path:
    """The folder that holds the scenes: ``root`` itself, or the one folder inside it that does (archives such as
    ``PUG_SPAR.tar.gz`` unpack into a folder of their own name)."""
    root = Path(root)
    if not root.is_dir() or _has_scenes(root):
        return root
    inner = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and _has_scenes(p)]
    return inner[0] if len(inner) == 1 else root


def load_binding_scenes(root: str | Path, split_kind: str = "compositional"):
    """A CLEVR / PUG:SPAR / PUG:SPARE folder (or a folder holding one such folder) as a scene dataset split the
    chosen way (``"paper"``: the paper's exact split; ``"compositional"``: the book's)."""
    ds = load_scenes(dataset_folder(root))
    return ds if ds.settings.split == split_kind else ds.with_settings(split=split_kind)


def binding_task(ds, name: str, split: str | None = "test") -> ChoiceTask:
    """The swap test of a scene dataset as the paper scores it: CLEVR counts ties as correct and scores plain CLIP
    with un-normalised text embeddings; PUG needs a strictly higher score."""
    clevr = ds.records[0].world == "clevr"
    return swap_task(ds, name, split=split, ties="correct" if clevr else "strict",
                     score="raw_text_dot" if clevr else "cosine")


def load_binding(root: str | Path, name: str, split: str | None = "test", split_kind: str = "compositional"
                 ) -> ChoiceTask:
    """Read a CLEVR / PUG:SPAR / PUG:SPARE folder and return its swap test (default: the held-out test split)."""
    return binding_task(load_binding_scenes(root, split_kind), name, split)
