"""Helpers for the LabCLIP Book.

The book reproduces "CLIP Behaves like a Bag-of-Words Model Cross-modally but not Uni-modally"
(Koishigarina, Uselis, Oh; arXiv 2502.03566). Each module owns one idea of the paper; chapters call
them in a few lines. Start with :func:`labclip_utils.profile.use_profile`.
"""

from labclip_utils.profile import Profile, current_profile, use_profile
from labclip_utils.reproducibility import seed_everything

__version__ = "0.1.0"

#: Where the book lives; Colab installs the package from here.
REPOSITORY_URL = "https://github.com/labclip-book/labclip-book"

__all__ = ["REPOSITORY_URL", "Profile", "__version__", "current_profile", "seed_everything", "use_profile"]
