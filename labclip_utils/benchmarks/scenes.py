"""The paper's synthetic benchmarks as choice tasks: CLEVR-style scenes, PUG:SPAR and PUG:SPARE.

A folder in any of the three real layouts (read by :func:`labclip_utils.scenes.load_scenes`) becomes the
swap test: each scene's caption against its attribute-swapped negative. As in LABCLIP's code, CLEVR counts
ties as correct and skips scenes whose negative would equal the caption (they stay in LABCLIP's training rows);
PUG counts ties as wrong.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from labclip_utils.scenes import load_scenes
from labclip_utils.scenes.formats import SETTINGS_FILE, SPAR_FILE, SPARE_FILE
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


def load_binding_scenes(root: str | Path, split_kind: str = "compositional", clevr_captions: str | None = None):
    """A CLEVR / PUG:SPAR / PUG:SPARE folder (or a folder holding one such folder) as a scene dataset split the
    chosen way (``"paper"``: the paper's exact split; ``"compositional"``: the book's).

    ``clevr_captions`` (2-object CLEVR only): ``"authors"`` writes captions and negatives as the authors' caption set
    does (colours in a fixed order, the negative swapping the shapes) and keeps same-colour scenes with their caption
    as negative, so that LABCLIP trains on them as the authors' code does; ``"scene"`` writes objects in the file's
    order, the negative swapping the colours, and skips same-colour scenes. Default: ``"authors"`` for the real
    renders (files without the book's ``labclip.json``), the folder's own settings otherwise.
    """
    folder = dataset_folder(root)
    ds = load_scenes(folder)
    clevr2 = all(r.world == "clevr" and len(r.objects) == 2 for r in ds.records)
    if clevr_captions not in (None, "authors", "scene"):
        raise ValueError(f"unknown clevr_captions {clevr_captions!r}; choose 'authors' or 'scene'")
    if clevr_captions is None and clevr2 and not (folder / SETTINGS_FILE).exists():
        clevr_captions = "authors"
    changes: dict = {} if ds.settings.split == split_kind else {"split": split_kind}
    if clevr2 and clevr_captions is not None:
        authors = clevr_captions == "authors"
        style = replace(ds.settings.style, order="caption_set" if authors else "scene")
        changes |= {"style": style, "negative_order": "caption_set", "unswappable": "caption" if authors else "skip"}
    return ds.with_settings(**changes) if changes else ds


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
