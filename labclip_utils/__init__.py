"""Helpers for the LabCLIP Book.

The book reproduces "CLIP Behaves like a Bag-of-Words Model Cross-modally but not Uni-modally"
(Koishigarina, Uselis, Oh; arXiv 2502.03566). Each module owns one idea of the paper; chapters call
them in a few lines. Start with :func:`labclip_utils.session.use_profile`.
"""

from labclip_utils._version import __version__
from labclip_utils.profile import Profile, current_profile
from labclip_utils.reproducibility import seed_everything


def __getattr__(name: str):
    """``use_profile`` is imported when first asked for: it loads models (torch, open_clip), which the settings,
    downloads and mirror commands of the package do not need."""
    if name == "use_profile":
        from labclip_utils.session import use_profile  # lazy: see above

        return use_profile
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _repository_url() -> str:
    """``[project.urls] Repository`` of pyproject.toml, the one place the address is written (read from the installed
    package's metadata)."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        for entry in metadata("labclip-utils").get_all("Project-URL") or []:
            label, _, url = entry.partition(",")
            if label.strip().lower() == "repository":
                return url.strip()
    except PackageNotFoundError:
        pass
    return ""


#: Where the book lives; Colab installs the package from here.
REPOSITORY_URL = _repository_url()

__all__ = ["REPOSITORY_URL", "Profile", "__version__", "current_profile", "seed_everything", "use_profile"]
