"""LABCLIP at web scale: fit A on embeddings that do not fit in memory, in the layout the community already uses.

Embeddings of CC3M, CC12M or a LAION subset are computed with ``clip-retrieval inference`` (it distributes over
Spark or Slurm), which writes aligned shards::

    <folder>/img_emb/img_emb_<i>.npy            N_i × D  (float16)
    <folder>/text_emb/text_emb_<i>.npy          N_i × D
    <folder>/metadata/metadata_<i>.parquet      N_i rows, with a ``caption`` column

This module adds the hard negatives next to them, each shard once (an interrupted run resumes):

    <folder>/negatives/negatives_<i>.parquet    ``negative_caption``: NegCLIP's noun/adjective shuffle
    <folder>/neg_text_emb/neg_text_emb_<i>.npy  their text embeddings, with the same encoder

and fits A by streaming over the shards with a fixed memory budget: each epoch visits the shards in a seeded
order, reads ``chunk_rows`` rows at a time (kept as stored, float16 for clip-retrieval's shards, and converted
batch by batch), shuffles them, and trains on batches of the paper's size. Checkpoints
every ``checkpoint_every`` steps let a killed fit resume where it stopped, with the same final A. Under
``torchrun`` (DistributedDataParallel; ``gloo`` on CPUs, ``nccl`` on GPUs) each process trains on its share of the
batches and the gradients are averaged.

The shards are read with NumPy's ``.npy`` header parser and one positioned read per chunk into an array (no memory
map: pages of the files are never mapped into the process, so its resident memory, anonymous and file-backed,
stays at one chunk however many rows are read) and with pyarrow. ``embedding-reader`` reads one folder
sequentially and pins ``pandas<3``; fitting needs the three shard folders aligned and visited in a shuffled order,
which it does not offer.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from labclip_utils.benchmarks.perturbations import Shuffler, SpacyTagger, pre_caption, shuffle_nouns_and_adjectives
from labclip_utils.io.files import atomic_write
from labclip_utils.labclip import (
    FitResult,
    LabclipConfig,
    LabclipMap,
    check_finite,
    epoch_row,
    labclip_loss,
    train_step,
)
from labclip_utils.metrics import choice_credit, pair_scores
from labclip_utils.progress import tqdm

FOLDERS = {"images": ("img_emb", "img_emb_{}.npy"), "captions": ("text_emb", "text_emb_{}.npy"),
           "metadata": ("metadata", "metadata_{}.parquet"), "negative_captions": ("negatives", "negatives_{}.parquet"),
           "negatives": ("neg_text_emb", "neg_text_emb_{}.npy")}


def shard_path(folder: Path, kind: str, index: int) -> Path:
    sub, pattern = FOLDERS[kind]
    return Path(folder) / sub / pattern.format(index)


@dataclass(frozen=True)
class _NpyLayout:
    """Where an ``.npy`` file keeps its array: shape, dtype, Fortran order and the byte offset of the data."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    offset: int


def _npy_layout(f: BinaryIO, path: Path) -> _NpyLayout:
    """The layout of an open ``.npy`` file from its header alone (the data is not read), checked against the file's
    size so that a truncated shard is refused when its folder is opened, not halfway through a fit."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    try:
        version = np.lib.format.read_magic(f)
        if version not in readers:
            raise ValueError(f".npy format version {version} (embedding shards use 1.0 or 2.0)")
        shape, fortran_order, dtype = readers[version](f)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npy embedding shard ({err})") from err
    layout = _NpyLayout(tuple(shape), dtype, fortran_order, f.tell())
    size = layout.offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if dtype.hasobject or os.fstat(f.fileno()).st_size < size:
        raise ValueError(f"{path}: not a readable .npy embedding shard "
                         f"({'object dtype' if dtype.hasobject else 'shorter than its header says'})")
    return layout


def _npy_header(path: Path) -> tuple[tuple[int, ...], str]:
    """Shape and dtype of an ``.npy`` shard (its header only: nothing else is read)."""
    with open(path, "rb") as f:
        layout = _npy_layout(f, path)
    return layout.shape, str(layout.dtype)


def read_npy_rows(path: Path, start: int, stop: int, dtype=None) -> np.ndarray:
    """Rows ``start:stop`` of an ``.npy`` file, as ``dtype`` (``None``: as stored), read with one positioned read
    into a new array. Nothing is memory-mapped (the pages a mapping touches count in the process's resident memory
    while it is open), so resident memory holds the rows returned and nothing else of the file."""
    path = Path(path)
    with open(path, "rb", buffering=0) as f:
        layout = _npy_layout(f, path)
        start, stop, _ = slice(start, stop).indices(layout.shape[0])
        stop = max(start, stop)
        if layout.fortran_order:  # rows are strided across the whole file: copy them out of a map closed at once
            rows = np.array(np.load(path, mmap_mode="r")[start:stop])
        else:
            rows = np.empty((stop - start, *layout.shape[1:]), dtype=layout.dtype)
            buffer = memoryview(rows.reshape(-1).view(np.uint8))
            f.seek(layout.offset + start * rows.strides[0])
            done = 0
            while done < len(buffer):  # a read may return less than asked (very large reads, some file systems)
                got = f.readinto(buffer[done:])
                if not got:
                    raise ValueError(f"{path}: ends before row {stop}")
                done += got
    return rows if dtype is None or rows.dtype == dtype else rows.astype(dtype)


@dataclass
class Shard:
    """One aligned shard: its index, its number of rows and its files."""

    index: int
    rows: int
    folder: Path

    def path(self, kind: str) -> Path:
        return shard_path(self.folder, kind, self.index)


@dataclass
class ShardedEmbeddings:
    """A clip-retrieval output folder, checked: aligned shard files, equal lengths, one width, captions present."""

    folder: Path
    shards: list[Shard]
    dim: int
    dtype: str

    @classmethod
    def open(cls, folder: str | Path, need_negatives: bool = False) -> ShardedEmbeddings:
        folder = Path(folder)
        image_dir = folder / FOLDERS["images"][0]
        if not image_dir.is_dir():
            raise FileNotFoundError(f"{folder}: no {FOLDERS['images'][0]}/ folder (clip-retrieval's layout expected)")
        indices = _shard_indices(folder, "images")
        if not indices:
            raise FileNotFoundError(f"{image_dir}: no img_emb_<i>.npy shards")
        for kind in ("captions", "negatives"):
            orphans = sorted(set(_shard_indices(folder, kind)) - set(indices))
            if orphans:
                raise ValueError(f"{shard_path(folder, kind, orphans[0])}: a shard with no "
                                 f"{shard_path(folder, 'images', orphans[0]).name} (shard {orphans[0]} of {folder}); "
                                 "remove it or add its images")
        shards, dims, dtypes = [], set(), set()
        for i in indices:
            kinds = ("images", "captions", "metadata") + (("negatives",) if need_negatives else ())
            for kind in kinds:
                if not shard_path(folder, kind, i).is_file():
                    raise FileNotFoundError(f"{shard_path(folder, kind, i)}: missing (shard {i} of {folder})")
            headers = {kind: _npy_header(shard_path(folder, kind, i)) for kind in kinds if kind != "metadata"}
            shapes = {kind: shape for kind, (shape, _) in headers.items()}
            for kind, shape in shapes.items():
                if len(shape) != 2:
                    raise ValueError(f"{shard_path(folder, kind, i)}: expected N×D embeddings, got shape {shape}")
            rows = shapes["images"][0]
            for kind, shape in shapes.items():
                if shape[0] != rows:
                    raise ValueError(f"{shard_path(folder, kind, i)}: {shape[0]} rows, but "
                                     f"{shard_path(folder, 'images', i).name} has {rows}")
            meta = _metadata_rows(shard_path(folder, "metadata", i))
            if meta != rows:
                raise ValueError(f"{shard_path(folder, 'metadata', i)}: {meta} rows, but the embeddings have {rows}")
            for kind, (_, dtype) in headers.items():
                if not np.issubdtype(np.dtype(dtype), np.floating):
                    raise ValueError(f"{shard_path(folder, kind, i)}: embeddings must be floating point, got {dtype}")
            dims |= {shape[1] for shape in shapes.values()}
            dtypes.add(headers["images"][1])
            shards.append(Shard(i, rows, folder))
        if len(dims) != 1:
            raise ValueError(f"{folder}: shards have different widths {sorted(dims)}")
        return cls(folder, shards, dims.pop(), ",".join(sorted(dtypes)))

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    def fingerprint(self) -> dict[str, str]:
        """What the data is, cheaply: each embedding shard's name with its size and a hash of its first and last
        64 KiB (a checkpoint of one folder is never resumed on another of the same shape)."""
        return {shard.path(kind).relative_to(self.folder).as_posix(): _file_fingerprint(shard.path(kind))
                for shard in self.shards for kind in ("images", "captions", "negatives")
                if shard.path(kind).is_file()}

    def read(self, shard: Shard, start: int, stop: int, kinds: Sequence[str] = ("images", "captions", "negatives"),
             dtype=np.float32) -> list[np.ndarray]:
        """Rows ``start:stop`` of a shard as arrays of ``dtype`` (``None``: as stored, half the memory for float16
        shards), read from the files into new arrays (:func:`read_npy_rows`: nothing stays mapped)."""
        return [read_npy_rows(shard.path(kind), start, stop, dtype) for kind in kinds]


def _shard_indices(folder: Path, kind: str) -> list[int]:
    """The indices of ``kind``'s shards in ``folder``; a file there that matches the pattern's prefix but is not
    ``<prefix><i>.npy`` (``img_emb_backup.npy``) is refused by name."""
    sub, pattern = FOLDERS[kind]
    prefix, suffix = pattern.split("{}")
    indices = []
    for p in sorted((Path(folder) / sub).glob(f"{prefix}*{suffix}")):
        match = re.fullmatch(re.escape(prefix) + r"(\d+)" + re.escape(suffix), p.name)
        if match is None:
            raise ValueError(f"{p}: not a shard name ({pattern.format('<i>')} expected); move it out of {p.parent}")
        indices.append(int(match.group(1)))
    return sorted(indices)


def _file_fingerprint(path: Path, edge: int = 1 << 16) -> str:
    """Size and a SHA-256 of the first and last ``edge`` bytes of a file."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(edge))
        f.seek(max(size - edge, 0))
        h.update(f.read(edge))
    return f"{size}:{h.hexdigest()[:24]}"


def _check_rows(source, shard: Shard, start: int, arrays: Sequence[np.ndarray],
                kinds: Sequence[str] = ("images", "captions", "negatives")) -> None:
    """Refuse a chunk with a NaN or infinite value, naming the shard file and the row."""
    for kind, a in zip(kinds, arrays, strict=True):
        bad = ~np.isfinite(a).all(axis=1)
        if bad.any():
            row = start + int(np.flatnonzero(bad)[0])
            where = shard.path(kind) if isinstance(source, ShardedEmbeddings) else f"{kind} of shard {shard.index}"
            raise ValueError(f"{where}: row {row} has NaN or infinite values ({int(bad.sum())} such rows in rows "
                             f"{start}–{start + len(a) - 1}); fix or drop them before fitting")


def _metadata_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises several types
        raise ValueError(f"{path}: not a readable parquet file ({err})") from err
    if "caption" not in meta.schema_arrow.names:
        raise ValueError(f"{path}: no 'caption' column (columns: {meta.schema_arrow.names})")
    return meta.metadata.num_rows


def read_captions(path: Path, column: str = "caption") -> list[str]:
    import pyarrow.parquet as pq

    values = pq.read_table(path, columns=[column]).column(column).to_pylist()
    if None in values:
        raise ValueError(f"{path}: row {values.index(None)} has no {column!r} (null; {values.count(None)} such rows); "
                         "drop those rows from every shard file, or give them a caption")
    return [str(c) for c in values]



def write_clip_retrieval(folder: str | Path, images, captions, texts: Sequence[str], shard_rows: int = 100_000,
                         dtype=np.float16) -> Path:
    """Write embeddings and captions in clip-retrieval's output layout (tests, the book's small example, the scale
    benchmark). ``images`` and ``captions`` are N×D arrays, ``texts`` the N captions."""
    folder = Path(folder)
    images, captions = np.asarray(images), np.asarray(captions)
    if not (len(images) == len(captions) == len(texts)):
        raise ValueError(f"{len(images)} images, {len(captions)} caption embeddings and {len(texts)} captions")
    for k, start in enumerate(range(0, len(images), shard_rows)):
        stop = start + shard_rows
        for kind, values in (("images", images), ("captions", captions)):
            target = shard_path(folder, kind, k)
            array = _cast(values[start:stop], dtype, target)
            atomic_write(target, lambda p, a=array: _save_npy(p, a))
        frame = pd.DataFrame({"caption": list(texts[start:stop]), "key": [f"{i:09d}" for i in range(start, stop)]
                              [: len(texts[start:stop])]})
        atomic_write(shard_path(folder, "metadata", k), lambda p, f=frame: f.to_parquet(p, index=False))
    return folder


def _cast(array: np.ndarray, dtype, path: Path, first_row: int = 0) -> np.ndarray:
    """``array`` (N×D) as ``dtype``, refusing rows whose finite values become infinite (float16 ends at 65504)."""
    source = np.asarray(array)
    with np.errstate(over="ignore"):
        out = source.astype(dtype)
    if out.ndim == 2 and np.issubdtype(out.dtype, np.floating):
        overflow = np.isinf(out).any(axis=1) & np.isfinite(source).all(axis=1)
        if overflow.any():
            row = first_row + int(np.flatnonzero(overflow)[0])
            raise ValueError(f"{path}: row {row} overflows {out.dtype} (values beyond ±{np.finfo(out.dtype).max:g}); "
                             "normalise the embeddings or write them as float32")
    return out


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)


# -- hard negatives ---------------------------------------------------------------------------------------------
def compute_negatives(folder: str | Path, tagger=None, *, seed: int = 0, n_process: int = 1, batch_size: int = 1000,
                      progress: bool = True) -> int:
    """NegCLIP's noun/adjective shuffle of every caption, one parquet file per shard, skipping shards already done
    (resumable). Tagging runs through spaCy's ``nlp.pipe(n_process=...)`` when ``tagger`` is a
    :class:`~labclip_utils.benchmarks.perturbations.SpacyTagger`. Each shard's shuffles are seeded by
    ``(seed, shard)``, so shards can be computed in any order, or again, with the same result. Returns how many
    shards were written."""
    data = ShardedEmbeddings.open(folder)
    tagger = tagger if tagger is not None else SpacyTagger()
    written = 0
    for shard in tqdm(data.shards, desc="hard negatives", disable=not progress):
        target = shard.path("negative_captions")
        if target.is_file():
            continue
        cleaned = [pre_caption(c, 40) for c in read_captions(shard.path("metadata"))]
        if isinstance(tagger, SpacyTagger):
            tags = tagger.tag_many(cleaned, n_process=n_process, batch_size=batch_size)
            lookup = dict(zip(cleaned, tags, strict=True))

            def tag(text: str, lookup=lookup) -> list[tuple[str, str]]:
                return lookup[text]
        else:
            tag = tagger
        rng = Shuffler(seed * 1_000_003 + shard.index)
        negatives = [shuffle_nouns_and_adjectives(c, tag, rng) for c in cleaned]
        frame = pd.DataFrame({"caption": cleaned, "negative_caption": negatives})
        atomic_write(target, lambda p, f=frame: f.to_parquet(p, index=False))
        written += 1
    return written


def embed_negatives(folder: str | Path, encoder, *, batch_size: int = 256, dtype=np.float16,
                    progress: bool = True) -> int:
    """Text embeddings of every shard's negatives (unit norm, like clip-retrieval's), skipping shards already done.
    Rows whose negative equals its caption get the caption's own embedding, as the in-memory path does."""
    data = ShardedEmbeddings.open(folder)
    written = 0
    for shard in tqdm(data.shards, desc="embedding negatives", disable=not progress):
        target = shard.path("negatives")
        if target.is_file():
            continue
        source = shard.path("negative_captions")
        if not source.is_file():
            raise FileNotFoundError(f"{source}: no negatives for shard {shard.index}; run compute_negatives first")
        texts = read_captions(source, "negative_caption")
        if len(texts) != shard.rows:
            raise ValueError(f"{source}: {len(texts)} negatives for {shard.rows} rows")
        emb = _cast(encoder.encode_texts(texts, batch_size=batch_size, progress=False).numpy(), dtype, target)
        atomic_write(target, lambda p, e=emb: _save_npy(p, e))
        written += 1
    return written


# -- resident memory --------------------------------------------------------------------------------------------
def memory_status_mb() -> dict[str, float]:
    """This process's memory figures from ``/proc/self/status`` in MiB (Linux; empty elsewhere): ``RssAnon`` (heap,
    tensors), ``RssFile`` (pages of mapped files: libraries, memory maps of data), ``VmHWM`` (the exact peak of
    resident memory since the process started or :func:`reset_memory_peak`), ``VmData`` (what ``RLIMIT_DATA``
    limits), and the others. Unlike ``ru_maxrss``, ``VmHWM`` is this process's own: Linux carries the peak of the
    process that starts a program into that program's ``ru_maxrss``."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return {}
    fields = (line.split(":", 1) for line in lines if line.endswith(" kB"))
    return {name: int(value.split()[0]) / 1024 for name, value in fields}


def reset_memory_peak() -> bool:
    """Start ``VmHWM`` again from the current resident memory (``/proc/self/clear_refs``, Linux 4.0 on); False
    where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class MemorySampler:
    """Peaks of anonymous and file-backed resident memory (``RssAnon``, ``RssFile``; MiB) over a ``with`` block,
    sampled on a thread every ``interval`` seconds (a short spike between samples can be missed; ``VmHWM`` is
    exact but counts the two together)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval, self.peaks = interval, {"RssAnon": 0.0, "RssFile": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        now = memory_status_mb()
        for name in self.peaks:
            self.peaks[name] = max(self.peaks[name], now.get(name, 0.0))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> MemorySampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


# -- streaming fit ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StreamConfig:
    """How the shards are streamed: rows held in memory at once, checkpoint period, precision."""

    chunk_rows: int = 32_768
    checkpoint_every: int = 200
    precision: str = "auto"  # "auto": bf16 autocast on CUDA, fp32 on CPU; or "fp32", "bf16"
    # glibc only: serve allocations above this many MiB with mmap, so that the batch-sized buffers freed after
    # each step go back to the system instead of fragmenting the heap (the peak otherwise creeps up by about
    # 150 MB over a CPU fit at batch 4096). Process-wide and not undone; None leaves the allocator alone.
    heap_threshold_mb: int | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.chunk_rows <= 0 or self.checkpoint_every <= 0:
            raise ValueError("chunk_rows and checkpoint_every must be positive")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {self.precision!r}")
        if self.heap_threshold_mb is not None and self.heap_threshold_mb <= 0:
            raise ValueError(f"heap_threshold_mb must be positive or None, got {self.heap_threshold_mb!r}")


def fix_heap_threshold(mb: int) -> bool:
    """Ask glibc to mmap every allocation above ``mb`` MiB (``mallopt(M_MMAP_THRESHOLD)``); False where the C
    library has no ``mallopt`` (macOS, musl without it, Windows)."""
    import ctypes
    import ctypes.util

    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_mmap_threshold = -3  # from glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, int(mb) << 20))


class InMemoryShards:
    """Tensors split into shards, read the way :class:`ShardedEmbeddings` reads files (tests, small data)."""

    def __init__(self, triplets: Sequence[tuple]) -> None:
        self._data = [tuple(np.asarray(x, dtype=np.float32) for x in t) for t in triplets]
        self.shards = [Shard(i, len(t[0]), Path(".")) for i, t in enumerate(self._data)]
        self.dim = self._data[0][0].shape[1]
        self.folder = Path("<memory>")

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    def fingerprint(self) -> dict[str, str]:
        """A hash of each shard's arrays."""
        return {f"shard {i}": hashlib.sha256(b"".join(np.ascontiguousarray(x).tobytes() for x in t)).hexdigest()[:24]
                for i, t in enumerate(self._data)}

    def read(self, shard: Shard, start: int, stop: int, kinds=("images", "captions", "negatives"), dtype=None):
        order = {"images": 0, "captions": 1, "negatives": 2}
        return [self._data[shard.index][order[k]][start:stop] for k in kinds]


def batch_plan(source, epoch: int, seed: int, chunk_rows: int, batch_size: int, *, drop_last: bool = False,
               kept_rows: dict[tuple[int, int], int] | None = None) -> Iterator[tuple[Shard, int, np.ndarray]]:
    """The batches of one epoch as ``(shard, chunk start, row indices within the chunk)``: shards in a seeded
    order, chunks of a shard in a seeded order, rows shuffled within their chunk, the last partial batch of each
    chunk kept (the paper's ``drop_last=False``) or, with ``drop_last``, every batch smaller than ``batch_size``
    skipped. ``kept_rows`` (:func:`changed_rows`) maps ``(shard index, chunk start)`` to how many of the chunk's
    rows are trained on (``drop_unchanged``); the indices are then positions among those rows."""
    rng = np.random.default_rng([seed, epoch])
    for s in rng.permutation(len(source.shards)):
        shard = source.shards[int(s)]
        starts = np.arange(0, shard.rows, chunk_rows)
        for start in rng.permutation(starts):
            rows = min(chunk_rows, shard.rows - int(start))
            if kept_rows is not None:
                rows = kept_rows[(shard.index, int(start))]
            order = rng.permutation(rows)
            for b in range(0, rows, batch_size):
                if drop_last and rows - b < batch_size:
                    break
                yield shard, int(start), order[b:b + batch_size]


def planned_batches(source, chunk_rows: int, batch_size: int, *, drop_last: bool = False,
                    kept_rows: dict[tuple[int, int], int] | None = None) -> int:
    """How many batches :func:`batch_plan` yields per epoch."""
    total = 0
    for shard in source.shards:
        for start in range(0, shard.rows, chunk_rows):
            rows = min(chunk_rows, shard.rows - start) if kept_rows is None else kept_rows[(shard.index, start)]
            total += rows // batch_size if drop_last else -(-rows // batch_size)
    return total


def _changed(captions: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """Which rows' negative embedding differs from their caption's (the rows ``drop_unchanged`` keeps, compared
    as :func:`~labclip_utils.labclip.fit_labclip` compares them: every value, exactly)."""
    return ~(negatives == captions).all(axis=1)


def changed_rows(source, chunk_rows: int) -> dict[tuple[int, int], int]:
    """For ``drop_unchanged``: how many rows of each chunk, keyed ``(shard index, chunk start)``, have a negative
    that differs from their caption. One read of the caption and negative shards, a chunk at a time, so that the
    batches of every epoch (and every process's share of them) are known before training starts."""
    counts = {}
    for shard in source.shards:
        for start in range(0, shard.rows, chunk_rows):
            pos, neg = source.read(shard, start, min(start + chunk_rows, shard.rows), ("captions", "negatives"),
                                   dtype=None)
            counts[(shard.index, start)] = int(_changed(pos, neg).sum())
    return counts


def check_stream_settings(config: LabclipConfig, stream: StreamConfig) -> None:
    """Refuse, before any data is read, the settings a streamed fit cannot honour: ``keep="best_val"`` (it takes
    no validation set) and a ``batch_size`` above ``stream.chunk_rows`` (a batch is drawn from one chunk)."""
    if config.keep != "last":
        raise ValueError(f"keep={config.keep!r} (--keep {config.keep}) needs a validation set, and a streamed fit "
                         "takes none: it keeps the last epoch (use keep='last' and evaluate the saved A afterwards, "
                         "e.g. with swap_accuracy_streaming or the eval command)")
    if config.batch_size > stream.chunk_rows:
        raise ValueError(f"batch_size {config.batch_size} is larger than chunk_rows {stream.chunk_rows} "
                         "(--chunk-rows): a streamed batch is drawn from the one chunk in memory, so it could not "
                         "hold batch_size rows; raise chunk_rows or lower batch_size")


def _save_checkpoint(path: Path, state: dict) -> None:
    atomic_write(path, lambda p: torch.save(state, p))


def _load_checkpoint(path: Path, key: dict, device: str) -> dict:
    """The state saved at ``path`` if it belongs to the fit described by ``key`` (same settings and the very same
    data); otherwise a ``ValueError`` that names the checkpoint and what differs."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        saved = json.loads(state["key"])
        state["map"], state["optimizer"], state["epoch"], state["step_in_epoch"], state["history"]  # noqa: B018
    except Exception as err:  # a shard, a pickle, a truncated file, no permission: torch raises several types
        raise ValueError(f"{path}: not a readable checkpoint of a streamed fit ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''})") from None
    if {k: v for k, v in saved.items() if k != "data"} != {k: v for k, v in key.items() if k != "data"}:
        raise ValueError(f"{path}: a checkpoint of another fit (settings, data size or world size differ); "
                         "remove it or choose another path")
    if saved.get("data") != key["data"]:
        theirs, ours = saved.get("data") or {}, key["data"]
        differ = sorted(n for n in set(theirs) | set(ours) if theirs.get(n) != ours.get(n))
        raise ValueError(f"{path}: a checkpoint of a fit on other data ({', '.join(differ[:3]) or 'no fingerprint'}"
                         f"{' …' if len(differ) > 3 else ''} differ); remove it or choose another path")
    if not all(torch.isfinite(v).all() for v in state["map"].values()):
        raise ValueError(f"{path}: the checkpoint's A or t is NaN or infinite (the fit diverged); it is not resumed, "
                         "remove it")
    return state


def fit_streaming(source, config: LabclipConfig | None = None, stream: StreamConfig | None = None, *,
                  checkpoint: str | Path | None = None, device: str = "cpu", progress: bool = True,
                  on_step: Callable[[int], None] | None = None) -> FitResult:
    """Fit A by streaming over shards (a :class:`ShardedEmbeddings` folder, or :class:`InMemoryShards`).

    Memory holds one chunk of ``stream.chunk_rows`` rows. With ``checkpoint`` (a file path), the state is saved
    every ``stream.checkpoint_every`` steps and at the end, and a fit started again with the same path resumes
    from it (the same final A as an uninterrupted run). Under ``torch.distributed`` each process takes every
    ``world_size``-th batch and gradients are averaged (DistributedDataParallel).

    Every field of ``config`` means what it means to :func:`~labclip_utils.labclip.fit_labclip`, with batches
    drawn within a chunk instead of over all rows (see :func:`batch_plan`): ``loss``, ``lr``, ``epochs``,
    ``init_logit_scale`` and ``seed`` (which seeds the batch order) as there; ``batch_size`` at most
    ``stream.chunk_rows``; ``drop_last`` skips the partial batch at the end of each chunk (all batches are full,
    unless no chunk holds a full batch: then, as ``fit_labclip`` keeps an epoch's only batch, nothing is skipped);
    ``drop_unchanged`` leaves out rows whose negative embedding equals their caption's (counted in one pass over
    the shards before training). ``keep="best_val"`` is refused: there is no validation set; the last epoch is
    kept. With one chunk holding every row, both fits train on the same batches whenever they are given the same
    order (tests/test_streaming.py).
    """
    config, stream = config or LabclipConfig(), stream or StreamConfig()
    check_stream_settings(config, stream)
    if stream.heap_threshold_mb is not None:
        fix_heap_threshold(stream.heap_threshold_mb)
    if isinstance(source, (str, Path)):
        source = ShardedEmbeddings.open(source, need_negatives=True)
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    rank, world = (torch.distributed.get_rank(), torch.distributed.get_world_size()) if distributed else (0, 1)
    torch.manual_seed(config.seed)
    labclip_map = LabclipMap(source.dim, config.init_logit_scale).to(device)
    model = torch.nn.parallel.DistributedDataParallel(labclip_map) if distributed else labclip_map
    opt = torch.optim.Adam(labclip_map.parameters(), lr=config.lr)
    autocast = stream.precision == "bf16" or (stream.precision == "auto" and device.startswith("cuda"))
    key = {"config": asdict(config), "chunk_rows": stream.chunk_rows, "rows": source.rows, "dim": source.dim,
           "world": world, "data": source.fingerprint()}
    kept_rows = changed_rows(source, stream.chunk_rows) if config.drop_unchanged else None
    if kept_rows is not None and not any(kept_rows.values()):
        raise ValueError(f"{source.folder}: no row has a hard negative (all {source.rows} negatives are equal to "
                         "their caption)")
    # drop_last skips partial batches, unless there is no full one (fit_labclip keeps an epoch's only batch)
    drop_last = config.drop_last and planned_batches(source, stream.chunk_rows, config.batch_size, drop_last=True,
                                                     kept_rows=kept_rows) > 0
    epoch0, step0, history = 1, 0, []
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and ckpt.exists():
        state = _load_checkpoint(ckpt, key, device)
        labclip_map.load_state_dict(state["map"])
        opt.load_state_dict(state["optimizer"])
        epoch0, step0, history = int(state["epoch"]), int(state["step_in_epoch"]), json.loads(state["history"])

    def save(epoch: int, step_in_epoch: int) -> None:
        if ckpt is not None and rank == 0:
            _save_checkpoint(ckpt, {"map": labclip_map.state_dict(), "optimizer": opt.state_dict(),
                                    "epoch": epoch, "step_in_epoch": step_in_epoch, "history": json.dumps(history),
                                    "key": json.dumps(key, sort_keys=True)})

    start, global_step = time.perf_counter(), 0
    # every process must take the same number of steps (their gradients are averaged at each one)
    usable = (planned_batches(source, stream.chunk_rows, config.batch_size, drop_last=drop_last,
                              kept_rows=kept_rows) // world) * world  # same every epoch
    bar = tqdm(total=config.epochs, initial=epoch0 - 1, desc="LABCLIP (streaming)", disable=not progress,
               leave=False)
    for epoch in range(epoch0, config.epochs + 1):
        total, batches, loaded = 0.0, 0, None
        for k, (shard, chunk, idx) in enumerate(batch_plan(source, epoch, config.seed, stream.chunk_rows,
                                                           config.batch_size, drop_last=drop_last,
                                                           kept_rows=kept_rows)):
            if epoch == epoch0 and k < step0:
                continue  # done before the checkpoint
            if k >= usable or k % world != rank:
                continue
            if loaded is None or loaded[0] != (shard.index, chunk):
                stop = min(chunk + stream.chunk_rows, shard.rows)
                loaded = None  # the previous chunk goes before the next one comes: one chunk in memory
                arrays = source.read(shard, chunk, stop, dtype=None)
                _check_rows(source, shard, chunk, arrays)
                rows = None  # drop_unchanged: the positions of the rows trained on, which idx indexes
                if kept_rows is not None:
                    changed = np.flatnonzero(_changed(arrays[1], arrays[2]))
                    if len(changed) != kept_rows[(shard.index, chunk)]:
                        raise ValueError(f"shard {shard.index} of {source.folder}, rows {chunk}–{stop - 1}: "
                                         f"{len(changed)} negatives differ from their caption, but "
                                         f"{kept_rows[(shard.index, chunk)]} did when the fit started (the shard "
                                         "changed during the fit)")
                    rows = torch.from_numpy(changed).to(device)
                loaded = ((shard.index, chunk), [torch.from_numpy(a).to(device) for a in arrays], rows)
            take = torch.from_numpy(idx).to(device)
            take = take if loaded[2] is None else loaded[2][take]
            images, pos, neg = (x[take].float() for x in loaded[1])
            with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=autocast):
                loss = labclip_loss(config.loss, F.normalize(images, dim=-1), model(pos),
                                    model(neg) if config.loss == "hnb" else None, labclip_map.logit_scale)
            total, batches, global_step = total + train_step(opt, loss), batches + 1, global_step + 1
            if (k + 1) % stream.checkpoint_every == 0:
                save(epoch, k + 1)
            if on_step is not None:
                on_step(k + 1)
        history.append(epoch_row(epoch, total, batches, labclip_map, start))
        save(epoch + 1, 0)
        bar.update(1)
    bar.close()
    check_finite(labclip_map)
    frame = pd.DataFrame(history).set_index("epoch") if history else pd.DataFrame()
    return FitResult(labclip_map.cpu().eval(), frame, config.epochs, config, time.perf_counter() - start)


@torch.no_grad()
def swap_accuracy_streaming(source, labclip_map: LabclipMap | None = None, chunk_rows: int = 32_768) -> float:
    """The swap test over every row of a sharded folder, a chunk at a time, scored by the metrics core (ties
    count as wrong; non-finite rows are refused)."""
    if isinstance(source, (str, Path)):
        source = ShardedEmbeddings.open(source, need_negatives=True)
    right = seen = 0
    for shard in source.shards:
        for start in range(0, shard.rows, chunk_rows):
            images, pos, neg = (torch.from_numpy(a).float() for a in source.read(
                shard, start, min(start + chunk_rows, shard.rows), dtype=None))
            if labclip_map is not None:
                pos, neg = labclip_map.map_texts(pos), labclip_map.map_texts(neg)
            scores = pair_scores(*(F.normalize(x, dim=-1) for x in (images, pos, neg)))
            right += int(choice_credit(scores, np.ones(len(scores), dtype=np.int64), "strict").sum())
            seen += len(scores)
    return right / seen
