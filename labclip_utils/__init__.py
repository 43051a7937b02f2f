"""Helpers for the LabCLIP Book.

The book reproduces "CLIP Behaves like a Bag-of-Words Model Cross-modally but not Uni-modally"
(Koishigarina, Uselis, Oh; arXiv 2502.03566). Each module owns one idea of the paper; chapters call
them in a few lines. Start with :func:`labclip_utils.profile.use_profile`.
"""

from labclip_utils.profile import Profile, current_profile, use_profile
from labclip_utils.reproducibility import seed_everything

__version__ = "0.1.0"


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
