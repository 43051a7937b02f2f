"""Command line: use LABCLIP without the book.

    python -m labclip_utils embed --encoder miniature --world clevr --n 12000 --out emb.safetensors
    python -m labclip_utils fit emb.safetensors --out A.safetensors
    python -m labclip_utils eval emb.safetensors --labclip A.safetensors --split test
    python -m labclip_utils negatives FOLDER --n-process 8        # clip-retrieval output: hard negatives
    python -m labclip_utils fit FOLDER --out A.safetensors --checkpoint fit.ckpt   # streamed, resumable
    python -m labclip_utils mirror serve FOLDER --port 8000      # a download mirror for a classroom
    python -m labclip_utils downloads reset FOLDER FILE          # forget a recorded checksum

An embeddings file is safetensors with ``images``, ``captions``, ``negatives`` (N×D, unit norm; NaN rows where
a scene has no negative) and optionally ``split`` (0 train, 1 val, 2 test). ``fit`` uses the train rows and
validates on the val rows (or on ``--val FILE``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from labclip_utils.artifacts import install, pack
from labclip_utils.benchmarks.perturbations import SpacyTagger
from labclip_utils.io.downloads import ChecksumError, DownloadError, reset_recorded
from labclip_utils.io.mirror import serve_forever, write_manifest
from labclip_utils.labclip import LabclipConfig, fit_labclip, load_labclip, save_labclip
from labclip_utils.metrics import swap_accuracy
from labclip_utils.models import load_encoder
from labclip_utils.scenes import make_scenes
from labclip_utils.store import embed_scenes
from labclip_utils.streaming import (
    FOLDERS,
    ShardedEmbeddings,
    StreamConfig,
    check_stream_settings,
    compute_negatives,
    embed_negatives,
    fit_streaming,
    swap_accuracy_streaming,
)
from labclip_utils.triplets import SPLIT_CODES, read_embeddings, rows, write_embeddings


def _same_file(a: str | Path, b: str | Path) -> bool:
    a, b = Path(a), Path(b)
    return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))


def check_output(path: str | Path, flag: str = "--out") -> Path:
    """Refuse, before any work is done, an output path that is a folder, lies under a file, or cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} {path}: is a folder; give a file name")
    parent = path.parent
    while not parent.exists() and not parent.is_symlink() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{flag} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: permission denied (cannot write in {parent})")
    return path


def _refuse_inputs(flag: str, path: str | Path, inputs: list[Path], folder: Path | None = None) -> None:
    """Refuse an output that is one of the input files (real paths and hard links compared), or that lies in one
    of a clip-retrieval folder's shard folders (where it would be read as data)."""
    for source in inputs:
        if _same_file(path, source):
            raise ValueError(f"{flag} {path} is an input file ({source}); writing there would destroy it")
    if folder is not None:
        target = Path(path).resolve()
        for sub, _ in FOLDERS.values():
            if (folder / sub).resolve() in target.parents:
                raise ValueError(f"{flag} {path} is inside the input folder's {sub}/; write it elsewhere")


def _positive(**values: int) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")


def cmd_embed(args: argparse.Namespace) -> None:
    _positive(n=args.n, objects=args.objects, image_size=args.image_size)
    check_output(args.out)

    encoder = load_encoder(args.encoder, args.pretrained)
    ds = make_scenes(args.n, args.world, args.objects, seed=args.seed, image_size=args.image_size)
    emb = embed_scenes(encoder, ds, progress=not args.quiet)
    write_embeddings(args.out, emb.images, emb.captions, emb.negatives, ds.split, encoder=encoder.id,
                     dataset=ds.name, fingerprint=ds.fingerprint(), n=str(len(ds)))
    print(f"wrote {args.out}: {len(ds)} scenes, D={emb.images.shape[1]}, encoder {encoder.id}")


def cmd_fit(args: argparse.Namespace) -> None:
    config = LabclipConfig(loss=args.loss, lr=args.lr, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                           keep=args.keep)
    check_output(args.out)
    if args.checkpoint:
        check_output(args.checkpoint, "--checkpoint")
        if _same_file(args.out, args.checkpoint):
            raise ValueError(f"--out {args.out} is also the --checkpoint")
    if not Path(args.embeddings).is_dir():
        for flag, path in (("--out", args.out), ("--checkpoint", args.checkpoint)):
            if path:
                _refuse_inputs(flag, path, [Path(p) for p in (args.embeddings, args.val) if p])
    else:  # clip-retrieval's layout: stream the shards
        if args.val:
            raise ValueError("--val: a streamed fit takes no validation file; it keeps the last epoch (evaluate the "
                             "saved A afterwards with `eval`)")
        stream = StreamConfig(chunk_rows=args.chunk_rows, heap_threshold_mb=args.heap_threshold_mb)
        check_stream_settings(config, stream)  # what fit_streaming refuses (--keep best_val...), before any work
        folder = Path(args.embeddings)
        data = ShardedEmbeddings.open(folder, need_negatives=True)
        inputs = [shard.path(kind) for shard in data.shards for kind in FOLDERS]
        for flag, path in (("--out", args.out), ("--checkpoint", args.checkpoint)):
            if path:
                _refuse_inputs(flag, path, inputs, folder)
        device, rank = args.device, 0
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # started by torchrun: one process per GPU (or CPU worker)
            torch.distributed.init_process_group("nccl" if device.startswith("cuda") else "gloo")
            rank = torch.distributed.get_rank()
            if device == "cuda":
                device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
        fit = fit_streaming(data, config, stream, checkpoint=args.checkpoint, device=device,
                            progress=not args.quiet and rank == 0)
        if rank != 0:
            return
        save_labclip(args.out, fit.map, encoder=args.encoder_id or "?", data=str(args.embeddings), loss=args.loss,
                     kept_epoch=fit.kept_epoch)
        print(f"wrote {args.out}")
        print(f"epochs={len(fit.history)} seconds={fit.seconds:.2f} loss={fit.history.iloc[-1]['loss']:.4f}")
        return
    tensors, meta = read_embeddings(args.embeddings)
    has_split = "split" in tensors
    train = rows(tensors, "train" if has_split else None, args.embeddings)
    if not len(train[0]):
        raise ValueError(f"{args.embeddings}: no training rows")
    if args.val:
        val = rows(read_embeddings(args.val)[0], None)
    else:
        val = rows(tensors, "val", args.embeddings) if has_split else None
        if val is not None and not len(val[0]):
            print(f"note: {args.embeddings} has no validation rows; fitting without a validation curve")
            val = None
    fit = fit_labclip(train, val, config, progress=not args.quiet)
    save_labclip(args.out, fit.map, encoder=meta.get("encoder", "?"), data=str(args.embeddings),
                 loss=args.loss, kept_epoch=fit.kept_epoch)
    last = fit.history.iloc[-1]
    val_text = f" val_swap={last['val_swap']:.4f}" if "val_swap" in fit.history else ""
    print(f"wrote {args.out}")
    print(f"epochs={len(fit.history)} kept_epoch={fit.kept_epoch} seconds={fit.seconds:.2f} "
          f"loss={last['loss']:.4f}{val_text}")


def cmd_negatives(args: argparse.Namespace) -> None:
    ShardedEmbeddings.open(args.folder)  # a broken folder is named before spaCy and the encoder load
    written = compute_negatives(args.folder, SpacyTagger(args.spacy_model), seed=args.seed, n_process=args.n_process,
                                progress=not args.quiet)
    encoder = load_encoder(args.model, args.pretrained, args.device)
    embedded = embed_negatives(args.folder, encoder, progress=not args.quiet)
    print(f"{args.folder}: negatives written for {written} shard(s), embedded for {embedded} (others were done)")


def cmd_eval(args: argparse.Namespace) -> None:
    if Path(args.embeddings).is_dir():
        data = ShardedEmbeddings.open(args.embeddings, need_negatives=True)
        labclip_map, _ = load_labclip(args.labclip, expected_dim=data.dim, encoder_id=args.encoder_id,
                                      allow_other_encoder=args.allow_other_encoder)
        print(f"rows={data.rows} split=all swap_before={swap_accuracy_streaming(data):.4f} "
              f"swap_after={swap_accuracy_streaming(data, labclip_map):.4f}")
        return
    tensors, meta = read_embeddings(args.embeddings)
    images, pos, neg = rows(tensors, args.split, args.embeddings)
    if not len(images):
        raise ValueError(f"{args.embeddings}: no rows in split {args.split!r}")
    labclip_map, _ = load_labclip(args.labclip, expected_dim=images.shape[1], encoder_id=meta.get("encoder"),
                                  allow_other_encoder=args.allow_other_encoder)
    before = swap_accuracy(images, pos, neg)
    after = swap_accuracy(images, labclip_map.map_texts(pos), labclip_map.map_texts(neg))
    print(f"rows={len(images)} split={args.split or 'all'} swap_before={before:.4f} swap_after={after:.4f}")


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m labclip_utils", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("embed", help="encode generated scenes into an embeddings file")
    e.add_argument("--encoder", default="miniature")
    e.add_argument("--pretrained", default="seed0", help="weights tag (default: the trained miniature, seed0)")
    e.add_argument("--world", default="clevr", choices=("clevr", "spar", "spare"))
    e.add_argument("--n", type=int, default=12_000)
    e.add_argument("--objects", type=int, default=2)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--image-size", type=int, default=64)
    e.add_argument("--out", required=True)
    f = sub.add_parser("fit", help="fit A on an embeddings file and write it")
    f.add_argument("embeddings", help="an embeddings file, or a folder in clip-retrieval's layout")
    f.add_argument("--val", default=None, help="validation embeddings (default: the file's val rows)")
    f.add_argument("--out", required=True)
    f.add_argument("--loss", default="hnb", choices=("hnb", "sb"))
    f.add_argument("--lr", type=float, default=1e-2)
    f.add_argument("--epochs", type=int, default=50)
    f.add_argument("--keep", default="last", choices=("last", "best_val"),
                   help="the last epoch (the paper's code) or the best on the validation rows")
    f.add_argument("--batch-size", type=int, default=128)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--checkpoint", default=None, help="streamed fits: save here every few steps and resume from it")
    f.add_argument("--chunk-rows", type=int, default=32_768, help="streamed fits: rows held in memory at once")
    f.add_argument("--heap-threshold-mb", type=int, default=None,
                   help="streamed fits on glibc: mmap allocations above this size, so freed batches leave the heap")
    f.add_argument("--device", default="cpu")
    v = sub.add_parser("eval", help="swap accuracy before and after a fitted A")
    v.add_argument("embeddings")
    v.add_argument("--labclip", required=True)
    v.add_argument("--split", default=None, choices=tuple(SPLIT_CODES))
    v.add_argument("--allow-other-encoder", action="store_true",
                   help="use an A fitted for another encoder's embeddings (refused by default)")
    for p in (f, v):
        p.add_argument("--encoder-id", default=None,
                       help="for a clip-retrieval folder: the encoder its embeddings come from (stored with A)")
    n = sub.add_parser("negatives", help="hard negatives for a clip-retrieval folder: NegCLIP shuffles, embedded")
    n.add_argument("folder")
    n.add_argument("--model", default="ViT-B-32")
    n.add_argument("--pretrained", default="openai")
    n.add_argument("--device", default="cpu")
    n.add_argument("--spacy-model", default="en_core_web_sm")
    n.add_argument("--n-process", type=int, default=1, help="spaCy worker processes")
    n.add_argument("--seed", type=int, default=0)
    for p in (e, f, v, n):
        p.add_argument("--quiet", action="store_true", help="no progress bars")
    d = sub.add_parser("downloads", help="manage the paper profile's downloaded files")
    d_sub = d.add_subparsers(dest="action", required=True)
    reset = d_sub.add_parser("reset", help="forget the recorded checksum of a file (after its host replaced it)")
    reset.add_argument("folder")
    reset.add_argument("file")
    a = sub.add_parser("artifacts", help="pack or install the prebuilt artefacts (the miniature, shared embeddings)")
    a_sub = a.add_subparsers(dest="action", required=True)
    pack = a_sub.add_parser("pack", help="pack the cache entries a build used into OUT/labclip-artifacts-*.tar.gz")
    pack.add_argument("cache")
    pack.add_argument("out")
    pack.add_argument("--since-file", default=None, help="only entries used since this file was written")
    install = a_sub.add_parser("install", help="unpack an archive into a cache folder")
    install.add_argument("archive")
    install.add_argument("cache")
    install.add_argument("--sha256", default=None)
    m = sub.add_parser("mirror", help="serve a folder of downloads as a mirror (LABCLIP_MIRROR)")
    m_sub = m.add_subparsers(dest="action", required=True)
    serve = m_sub.add_parser("serve", help="serve FOLDER over HTTP (byte ranges, for resumable downloads)")
    serve.add_argument("folder")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8000)
    manifest = m_sub.add_parser("manifest", help="write FOLDER/SHA256SUMS so that clients can check every file")
    manifest.add_argument("folder")
    return parser


def cmd_downloads(args: argparse.Namespace) -> None:
    if not Path(args.folder).is_dir():
        raise ValueError(f"{args.folder}: not a folder of downloads")
    had = reset_recorded(args.folder, args.file)
    print(f"{args.file}: recorded checksum {'forgotten' if had else 'was not recorded'} in {args.folder}")


def cmd_artifacts(args: argparse.Namespace) -> None:
    if args.action == "pack":
        if Path(args.out).exists() and not Path(args.out).is_dir():
            raise ValueError(f"{args.out}: is a file; pack writes into a folder")
        check_output(Path(args.out) / "archive", "out folder")
        since = Path(args.since_file).stat().st_mtime if args.since_file else None
        archive = pack(args.cache, args.out, since=since)
        print(f"wrote {archive} ({archive.stat().st_size / 1e6:.0f} MB) and {archive.name}.sha256")
    else:
        manifest = install(args.archive, args.cache, args.sha256)
        print(f"installed {manifest['version']}: {len(manifest['entries'])} cache entries into {args.cache}")


def cmd_mirror(args: argparse.Namespace) -> None:
    if args.action == "serve" and not 0 <= args.port <= 65535:
        raise ValueError(f"--port {args.port}: not a port number (0-65535)")
    if args.action == "manifest":
        print(f"wrote {write_manifest(args.folder)}")
    else:
        serve_forever(args.folder, args.host, args.port)


def main(argv: list[str] | None = None) -> int:
    """Run a command; a failure is one line on stderr (naming the file or argument) and exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        {"embed": cmd_embed, "fit": cmd_fit, "eval": cmd_eval, "downloads": cmd_downloads,
         "mirror": cmd_mirror, "negatives": cmd_negatives, "artifacts": cmd_artifacts}[args.command](args)
    except Exception as err:  # noqa: BLE001 (a command ends in one line, never in a traceback)
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    return 0


def one_line(err: BaseException) -> str:
    """An exception as one line: its message (lines joined), prefixed by its type unless it is an expected one."""
    text = "; ".join(line.strip() for line in str(err).splitlines() if line.strip()) or repr(err)
    expected = (ValueError, OSError, FloatingPointError, DownloadError, ChecksumError)
    return text if isinstance(err, expected) else f"{type(err).__name__}: {text}"
