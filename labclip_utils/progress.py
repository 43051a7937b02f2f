"""Progress bars: tqdm's, shown to readers in Jupyter and Colab, left out where nobody watches.

Every long step of the package shows a bar unless its caller passes ``progress=False``. ``LABCLIP_PROGRESS=0``
turns all of them off at once, whatever the callers pass: the book's runner sets it, so that the published pages
carry no progress-bar widgets (they would render as frozen "0%" bars on the website).
"""

from __future__ import annotations

from tqdm.auto import tqdm as _tqdm

from labclip_utils.profile import progress_enabled


def tqdm(*args, **kwargs):
    """``tqdm.auto.tqdm``, disabled when ``LABCLIP_PROGRESS=0``."""
    if not progress_enabled():
        kwargs["disable"] = True
    return _tqdm(*args, **kwargs)
