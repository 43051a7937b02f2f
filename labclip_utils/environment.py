"""Environment report for chapter 0: what this machine has and how long the book took to run on it."""

from __future__ import annotations

import importlib.metadata as metadata
import os
import platform
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

from labclip_utils.profile import PAPER_DOWNLOADS, PROFILE_SPECS, Profile

#: Set by the book's runner (tools/book.py) to the JUnit report of the notebooks executed before chapter 0.
RUN_REPORT_ENV = "LABCLIP_RUN_REPORT"

_PACKAGES = ("torch", "torchvision", "open_clip_torch", "numpy", "scikit-learn", "pandas", "jupyter-book")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_report(profile: Profile) -> pd.DataFrame:
    """A two-column table: Python, package versions, device, cores and the active profile."""
    import torch

    rows: list[tuple[str, str]] = [
        ("python", platform.python_version()),
        ("platform", platform.platform(terse=True)),
        ("CPU cores", str(os.cpu_count())),
        ("torch threads", str(torch.get_num_threads())),
    ]
    rows += [(name, _version(name)) for name in _PACKAGES]
    if torch.cuda.is_available():
        gpu = f"{torch.cuda.get_device_name(0)} ({torch.cuda.device_count()} visible)"
    else:
        gpu = "none (CPU only)"
    rows += [
        ("GPU", gpu),
        ("device used", profile.device),
        ("profile", profile.name),
        ("model", profile.model if profile.pretrained is None else f"{profile.model}/{profile.pretrained}"),
        ("cache folder", str(profile.cache_dir)),
    ]
    return pd.DataFrame(rows, columns=["item", "value"]).set_index("item")


def profiles_table() -> pd.DataFrame:
    """What each profile uses, needs and downloads."""
    rows = [
        {
            "profile": spec.name,
            "model": spec.model if spec.pretrained is None else f"{spec.model}/{spec.pretrained}",
            "data": spec.data,
            "downloads": "yes" if spec.downloads else "nothing",
            "needs": spec.needs,
        }
        for spec in PROFILE_SPECS.values()
    ]
    return pd.DataFrame(rows).set_index("profile")


def paper_downloads_table() -> pd.DataFrame:
    """What the paper profile fetches, with approximate sizes."""
    return pd.DataFrame([d.__dict__ for d in PAPER_DOWNLOADS]).set_index("item")


def notebook_run_times(report: str | Path | None = None) -> pd.DataFrame | None:
    """Per-notebook execution times from the runner's JUnit report, or None when there is none.

    ``report`` defaults to ``$LABCLIP_RUN_REPORT``. A report that exists but cannot be parsed raises a
    ``ValueError`` naming the file.
    """
    path = Path(report) if report else (Path(os.environ[RUN_REPORT_ENV]) if os.environ.get(RUN_REPORT_ENV) else None)
    if path is None or not path.is_file():
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise ValueError(f"{path}: not a readable JUnit XML report ({err})") from err
    rows = []
    for case in root.iter("testcase"):
        name = case.get("name") or case.get("classname") or "?"
        failed = any(child.tag in {"failure", "error"} for child in case)
        rows.append({"notebook": Path(name).stem, "seconds": float(case.get("time", "nan")), "passed": not failed})
    if not rows:
        raise ValueError(f"{path}: JUnit report lists no test cases")
    return pd.DataFrame(rows).sort_values("notebook").set_index("notebook")
