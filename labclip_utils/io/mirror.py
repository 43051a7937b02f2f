"""Serve a mirror of the paper profile's downloads: one folder, one command, a room of students.

A mirror is a folder laid out as ``<folder>/<dataset>/<official file name>`` (the dataset names and file names of
:data:`labclip_utils.benchmarks.downloads.DATASETS`). Point ``LABCLIP_MIRROR`` at the folder itself (one
machine) or at the URL this module serves it on (a classroom, a cluster behind a firewall)::

    python -m labclip_utils mirror manifest /data/labclip-mirror      # write SHA256SUMS (once)
    python -m labclip_utils mirror serve /data/labclip-mirror --port 8000
    export LABCLIP_MIRROR=http://teacher-laptop:8000

``SHA256SUMS`` (the ``sha256sum`` format, paths relative to the folder) lets every client check what it received;
the server answers byte ranges, so interrupted downloads of the large COCO zips resume. Files in sub-folders
(``coco/val2014/COCO_val2014_….jpg``, fetched one by one at class size) are served and listed too.

**Client tags.** ``/@<tag>/<dataset>/<file>`` (a tag of ``[A-Za-z0-9_.-]``) serves exactly what
``/<dataset>/<file>`` serves, ``SHA256SUMS`` included, and counts the bytes sent under ``<tag>``: a client that sets
``LABCLIP_MIRROR=http://teacher-laptop:8000/@07_benchmarks`` is counted as ``07_benchmarks`` with nothing else to
change (untagged requests count under ``""``). ``serve(folder, usage=counts)`` keeps the counts in a dict, per tag:
``{"requests": n, "bytes": body bytes sent, "files": {"<dataset>/<file>": bytes sent}}`` (a ranged request counts
the bytes of its range, a ``HEAD`` none); a rehearsal uses it to measure each notebook's downloads.
"""

from __future__ import annotations

import email.utils
import http.server
import re
import threading
import urllib.parse
from contextlib import contextmanager, suppress
from pathlib import Path

from labclip_utils.io.files import atomic_write
from labclip_utils.io.hashing import MANIFEST, sha256_of
from labclip_utils.profile import mirror_log
from labclip_utils.progress import tqdm

#: What a mirror folder may hold that is not data: a download's or a lock's leftovers.
_NOT_DATA = (".part", ".part.json", ".lock")
#: ``/@<tag>/<rest>``: a client's tag in a request's path.
_TAGGED = re.compile(r"/@([^/?#]*)(.*)", re.DOTALL)
_TAG = re.compile(r"[A-Za-z0-9_.-]+")


def write_manifest(folder: str | Path, progress: bool = True) -> Path:
    """Hash every ``<dataset>/<file>`` in ``folder``, files in sub-folders included (``<dataset>/<folder>/<file>``),
    into ``folder/SHA256SUMS`` (written atomically). Hidden files and folders, ``.part`` and ``.lock`` files are
    left out."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    files = sorted(p for p in folder.glob("*/**/*") if p.is_file() and not p.name.endswith(_NOT_DATA)
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    lines = []
    for path in tqdm(files, desc="hashing the mirror", disable=not progress):
        lines.append(f"{sha256_of(path)}  {path.relative_to(folder).as_posix()}")
    return atomic_write(folder / MANIFEST, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))


class MirrorHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single byte ranges (``Range``, ``If-Range``), ``ETag`` and ``Last-Modified``; a path may
    start with a client tag, ``/@<tag>``, and the body bytes sent are counted per tag into ``usage`` (under
    ``usage_lock``) when it is given."""

    def __init__(self, *args, usage: dict | None = None, usage_lock: threading.Lock | None = None, **kwargs) -> None:
        self.usage = usage
        self.usage_lock = usage_lock or threading.Lock()
        self._counted: tuple[str, str] | None = None
        super().__init__(*args, **kwargs)  # handles the request: the attributes above must exist first

    def _count(self, tag: str, key: str | None = None, sent: int = 0, request: bool = False) -> None:
        if self.usage is None:
            return
        with self.usage_lock:
            entry = self.usage.setdefault(tag, {"requests": 0, "bytes": 0, "files": {}})
            entry["requests"] += int(request)
            entry["bytes"] += sent
            if key is not None:
                entry["files"][key] = entry["files"].get(key, 0) + sent

    def _route(self) -> tuple[str | None, str]:
        """The request's client tag (``""`` untagged, None when malformed) and its path without the tag."""
        match = _TAGGED.fullmatch(self.path)
        if match is None:
            return "", self.path
        tag = urllib.parse.unquote(match.group(1))
        return (tag if _TAG.fullmatch(tag) else None), match.group(2) or "/"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        if mirror_log():
            super().log_message(format, *args)

    def _validators(self, path: Path) -> tuple[str, str]:
        stat = path.stat()
        return f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"', email.utils.formatdate(stat.st_mtime, usegmt=True)

    def send_head(self):
        self._counted = None
        tag, route = self._route()
        if tag is None:
            self.send_error(404, "malformed client tag (expected /@<letters, digits, _ . ->/<dataset>/<file>)")
            return None
        self._count(tag, request=True)
        path = Path(self.translate_path(route))
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
        key = path.relative_to(self.directory).as_posix()
        self._count(tag, key)  # listed even when no body follows (HEAD)
        self._counted = (tag, key)
        return f

    def copyfile(self, source, outputfile) -> None:
        remaining = getattr(self, "_remaining", None)
        while remaining is None or remaining > 0:
            block = source.read(1 << 20 if remaining is None else min(1 << 20, remaining))
            if not block:
                break
            # counted before it is written, so that a client that has its bytes finds them counted; taken back if
            # the client hung up (a block is sent whole or fails)
            if self._counted is not None:
                self._count(*self._counted, sent=len(block))
            try:
                outputfile.write(block)
            except OSError:
                if self._counted is not None:
                    self._count(*self._counted, sent=-len(block))
                raise
            if remaining is not None:
                remaining -= len(block)


@contextmanager
def serve(folder: str | Path, host: str = "127.0.0.1", port: int = 0, usage: dict | None = None):
    """Serve ``folder`` over HTTP in a background thread for the duration of a ``with`` block; yields the URL.
    ``usage``, when given, receives the counts of each client tag (``/@<tag>/…``; see the module's docstring)."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    lock = threading.Lock()

    def handler(*args, **kwargs):
        return MirrorHandler(*args, directory=str(folder), usage=usage, usage_lock=lock, **kwargs)

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
