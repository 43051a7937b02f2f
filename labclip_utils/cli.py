"""Command line: use LABCLIP without the book.

    python -m labclip_utils embed --encoder miniature --world clevr --n 12000 --out emb.safetensors
    python -m labclip_utils fit emb.safetensors --out A.safetensors
    python -m labclip_utils eval emb.safetensors --labclip A.safetensors --split test

An embeddings file is safetensors with ``images``, ``captions``, ``negatives`` (N×D, unit norm; NaN rows where
a scene has no negative) and optionally ``split`` (0 train, 1 val, 2 test). ``fit`` uses the train rows and
validates on the val rows (or on ``--val FILE``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from labclip_utils.binding import swap_accuracy
from labclip_utils.labclip import LabclipConfig, fit_labclip, load_labclip, save_labclip

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
REQUIRED = ("images", "captions", "negatives")


def read_embeddings(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata of an embeddings file; errors name the file and what is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such embeddings file")
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
            meta = json.loads((f.metadata() or {}).get("labclip", "{}"))
    except Exception as err:  # safetensors raises several types
        raise ValueError(f"{path}: not a safetensors embeddings file ({err})") from err
    missing = [k for k in REQUIRED if k not in tensors]
    if missing:
        raise ValueError(f"{path}: missing tensor(s) {missing}; found {sorted(tensors)}")
    shapes = {k: tuple(tensors[k].shape) for k in REQUIRED}
    if len(set(shapes.values())) != 1 or len(shapes["images"]) != 2:
        raise ValueError(f"{path}: images, captions and negatives must all be N×D, got {shapes}")
    return {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}, meta


def _rows(tensors: dict[str, torch.Tensor], split: str | None):
    if split is None:
        mask = torch.ones(len(tensors["images"]), dtype=torch.bool)
    elif "split" not in tensors:
        raise ValueError(f"the file has no 'split' tensor, so --split {split} cannot be applied")
    else:
        mask = tensors["split"] == SPLIT_CODES[split]
    return tuple(tensors[k][mask] for k in REQUIRED)


def cmd_embed(args: argparse.Namespace) -> None:
    from labclip_utils.models import load_encoder
    from labclip_utils.scenes import make_scenes
    from labclip_utils.store import embed_scenes

    encoder = load_encoder(args.encoder, args.pretrained)
    ds = make_scenes(args.n, args.world, args.objects, seed=args.seed, image_size=args.image_size)
    emb = embed_scenes(encoder, ds, progress=not args.quiet)
    split = torch.tensor([SPLIT_CODES[s] for s in ds.split], dtype=torch.uint8)
    meta = {"encoder": encoder.id, "dataset": ds.name, "fingerprint": ds.fingerprint(), "n": len(ds)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_file({"images": emb.images, "captions": emb.captions, "negatives": emb.negatives, "split": split},
              args.out, metadata={"labclip": json.dumps(meta)})
    print(f"wrote {args.out}: {len(ds)} scenes, D={emb.images.shape[1]}, encoder {encoder.id}")


def cmd_fit(args: argparse.Namespace) -> None:
    tensors, meta = read_embeddings(args.embeddings)
    has_split = "split" in tensors
    train = _rows(tensors, "train" if has_split else None)
    val = _rows(read_embeddings(args.val)[0], None) if args.val else (_rows(tensors, "val") if has_split else None)
    config = LabclipConfig(loss=args.loss, lr=args.lr, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    fit = fit_labclip(train, val, config, progress=not args.quiet)
    save_labclip(args.out, fit.model, encoder=meta.get("encoder", "?"), data=str(args.embeddings),
                 loss=args.loss, best_epoch=fit.best_epoch)
    last = fit.history.iloc[-1]
    val_text = f" val_swap={fit.history['val_swap'].max():.4f}" if "val_swap" in fit.history else ""
    print(f"wrote {args.out}")
    print(f"epochs={len(fit.history)} best_epoch={fit.best_epoch} seconds={fit.seconds:.2f} "
          f"loss={last['loss']:.4f}{val_text}")


def cmd_eval(args: argparse.Namespace) -> None:
    tensors, _ = read_embeddings(args.embeddings)
    images, pos, neg = _rows(tensors, args.split)
    model, meta = load_labclip(args.labclip, expected_dim=images.shape[1])
    before = swap_accuracy(images, pos, neg)
    after = swap_accuracy(images, model.map_texts(pos), model.map_texts(neg))
    print(f"rows={len(images)} split={args.split or 'all'} swap_before={before:.4f} swap_after={after:.4f}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m labclip_utils", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("embed", help="encode generated scenes into an embeddings file")
    e.add_argument("--encoder", default="miniature")
    e.add_argument("--pretrained", default=None)
    e.add_argument("--world", default="clevr", choices=("clevr", "spar", "spare"))
    e.add_argument("--n", type=int, default=12_000)
    e.add_argument("--objects", type=int, default=2)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--image-size", type=int, default=64)
    e.add_argument("--out", required=True)
    f = sub.add_parser("fit", help="fit A on an embeddings file and write it")
    f.add_argument("embeddings")
    f.add_argument("--val", default=None, help="validation embeddings (default: the file's val rows)")
    f.add_argument("--out", required=True)
    f.add_argument("--loss", default="hnb", choices=("hnb", "sb"))
    f.add_argument("--lr", type=float, default=1e-2)
    f.add_argument("--epochs", type=int, default=50)
    f.add_argument("--batch-size", type=int, default=128)
    f.add_argument("--seed", type=int, default=0)
    v = sub.add_parser("eval", help="swap accuracy before and after a fitted A")
    v.add_argument("embeddings")
    v.add_argument("--labclip", required=True)
    v.add_argument("--split", default=None, choices=tuple(SPLIT_CODES))
    for p in (e, f, v):
        p.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        {"embed": cmd_embed, "fit": cmd_fit, "eval": cmd_eval}[args.command](args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def write_embeddings(path: str | Path, images: torch.Tensor, captions: torch.Tensor, negatives: torch.Tensor,
                     split: np.ndarray | None = None, **meta: str) -> Path:
    """Write an embeddings file in the format the command line reads."""
    tensors = {"images": images.contiguous(), "captions": captions.contiguous(), "negatives": negatives.contiguous()}
    if split is not None:
        tensors["split"] = torch.tensor([SPLIT_CODES[str(s)] for s in split], dtype=torch.uint8)
    save_file(tensors, str(path), metadata={"labclip": json.dumps(meta)})
    return Path(path)
