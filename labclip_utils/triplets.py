"""The embeddings file the command line reads and writes: one safetensors file of LABCLIP triplets.

``images``, ``captions`` and ``negatives`` (N×D, floating point; a negative row of NaN means "no negative"),
optionally ``split`` (uint8 codes of :data:`SPLIT_CODES`), and the metadata the writer gave, as JSON under the
``labclip`` key. A file produced elsewhere (another encoder, a cluster job) only needs these tensors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from labclip_utils.cache import read_safetensors, write_safetensors
from labclip_utils.io.files import atomic_write
from labclip_utils.labclip import check_triplet
from labclip_utils.scenes.splits import SPLITS

#: How the optional ``split`` tensor codes each row: the scene splits in their order (train 0, val 1, test 2).
SPLIT_CODES: dict[str, int] = {name: code for code, name in enumerate(SPLITS)}
#: The tensors every embeddings file holds, each N×D and floating point.
REQUIRED = ("images", "captions", "negatives")


def read_embeddings(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata of an embeddings file; errors name the file and what is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such embeddings file")
    try:
        tensors, header = read_safetensors(path)
        meta = json.loads(header.get("labclip", "{}"))
    except PermissionError as err:
        raise ValueError(f"{path}: permission denied ({err.strerror})") from None
    except Exception as err:  # safetensors raises several types
        raise ValueError(f"{path}: not a safetensors embeddings file ({err})") from err
    missing = [k for k in REQUIRED if k not in tensors]
    if missing:
        raise ValueError(f"{path}: missing tensor(s) {missing}; found {sorted(tensors)}")
    not_float = {k: str(tensors[k].dtype) for k in REQUIRED if not tensors[k].is_floating_point()}
    if not_float:
        raise ValueError(f"{path}: embeddings must be floating point, got {not_float}")
    shapes = {k: tuple(tensors[k].shape) for k in REQUIRED}
    if len(set(shapes.values())) != 1 or len(shapes["images"]) != 2:
        raise ValueError(f"{path}: images, captions and negatives must all be N×D, got {shapes}")
    if "split" in tensors:
        codes = tensors["split"]
        if tuple(codes.shape) != (shapes["images"][0],):
            raise ValueError(f"{path}: 'split' has shape {tuple(codes.shape)}, expected ({shapes['images'][0]},)")
        if codes.numel() and not set(codes.unique().tolist()) <= set(SPLIT_CODES.values()):
            raise ValueError(f"{path}: 'split' holds codes {sorted(set(codes.unique().tolist()))}; "
                             f"expected {SPLIT_CODES}")
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    try:
        check_triplet(tuple(tensors[k] for k in REQUIRED), str(path))
    except ValueError as err:
        raise ValueError(str(err)) from None
    return tensors, meta


def rows(tensors: dict[str, torch.Tensor], split: str | None, path: Path | str = "the file"
         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(images, captions, negatives)`` of one split (``None``: every row); an error names the file without splits."""
    if split is None:
        mask = torch.ones(len(tensors["images"]), dtype=torch.bool)
    elif "split" not in tensors:
        raise ValueError(f"{path}: no 'split' tensor, so --split {split} cannot be applied")
    else:
        mask = tensors["split"] == SPLIT_CODES[split]
    return tuple(tensors[k][mask] for k in REQUIRED)


def write_embeddings(path: str | Path, images: torch.Tensor, captions: torch.Tensor, negatives: torch.Tensor,
                     split: np.ndarray | None = None, **meta: str) -> Path:
    """Write an embeddings file in the format the command line reads."""
    tensors = {"images": images.contiguous(), "captions": captions.contiguous(), "negatives": negatives.contiguous()}
    if split is not None:
        tensors["split"] = torch.tensor([SPLIT_CODES[str(s)] for s in split], dtype=torch.uint8)
    return atomic_write(path, lambda tmp: write_safetensors(tmp, tensors, {"labclip": json.dumps(meta)}), share=True)
