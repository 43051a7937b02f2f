"""Serve a mirror of the paper profile's downloads: one folder, one command, a room of students.

A mirror is a folder laid out as ``<folder>/<dataset>/<official file name>`` (the dataset names and file names of
:data:`labclip_utils.benchmarks.downloads.DATASETS`). Point ``LABCLIP_MIRROR`` at the folder itself (one
machine) or at the URL this module serves it on (a classroom, a cluster behind a firewall)::

    python -m labclip_utils mirror manifest /data/labclip-mirror      # write SHA256SUMS (once)
    python -m labclip_utils mirror serve /data/labclip-mirror --port 8000
    export LABCLIP_MIRROR=http://teacher-laptop:8000

``SHA256SUMS`` (the ``sha256sum`` format, paths relative to the folder) lets every client check what it received;
the server answers byte ranges, so interrupted downloads of the large COCO zips resume.
"""

from __future__ import annotations

import email.utils
import http.server
import re
import threading
from contextlib import contextmanager, suppress
from pathlib import Path

from labclip_utils.io.files import atomic_write
from labclip_utils.io.hashing import MANIFEST, sha256_of
from labclip_utils.profile import mirror_log
from labclip_utils.progress import tqdm


def write_manifest(folder: str | Path, progress: bool = True) -> Path:
    """Hash every ``<dataset>/<file>`` in ``folder`` into ``folder/SHA256SUMS`` (written atomically)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    files = sorted(p for p in folder.glob("*/*") if p.is_file() and not p.name.startswith("."))
    lines = []
    for path in tqdm(files, desc="hashing the mirror", disable=not progress):
        lines.append(f"{sha256_of(path)}  {path.relative_to(folder).as_posix()}")
    return atomic_write(folder / MANIFEST, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))


class MirrorHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single byte ranges (``Range``, ``If-Range``), ``ETag`` and ``Last-Modified``."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        if mirror_log():
            super().log_message(format, *args)

    def _validators(self, path: Path) -> tuple[str, str]:
        stat = path.stat()
        return f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"', email.utils.formatdate(stat.st_mtime, usegmt=True)

    def send_head(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404, "not in the mirror")
            return None
        size = path.stat().st_size
        etag, modified = self._validators(path)
        start, end = 0, size - 1
        ranged = False
        wanted = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if wanted and (if_range is None or if_range in (etag, modified)):
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted.strip())
            if match:
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
                if start >= size or start > end:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                ranged = True
        f = open(path, "rb")  # noqa: SIM115 - the base class closes it after copyfile
        f.seek(start)
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", modified)
        self.send_header("Content-Length", str(end - start + 1))
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        self._remaining = end - start + 1
        return f

    def copyfile(self, source, outputfile) -> None:
        remaining = getattr(self, "_remaining", None)
        while remaining is None or remaining > 0:
            block = source.read(1 << 20 if remaining is None else min(1 << 20, remaining))
            if not block:
                break
            outputfile.write(block)
            if remaining is not None:
                remaining -= len(block)


@contextmanager
def serve(folder: str | Path, host: str = "127.0.0.1", port: int = 0):
    """Serve ``folder`` over HTTP in a background thread for the duration of a ``with`` block; yields the URL."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")

    def handler(*args, **kwargs):
        return MirrorHandler(*args, directory=str(folder), **kwargs)

    server = http.server.ThreadingHTTPServer((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def serve_forever(folder: str | Path, host: str = "0.0.0.0", port: int = 8000) -> None:
    """Serve ``folder`` until interrupted (the ``mirror serve`` command)."""
    with serve(folder, host, port) as url:
        print(f"serving {Path(folder).resolve()} at {url}; clients set LABCLIP_MIRROR={url} (Ctrl-C stops)")
        with suppress(KeyboardInterrupt):
            threading.Event().wait()
