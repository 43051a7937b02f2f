"""A chapter's session: the profile it runs, seeded, with the encoders that profile uses.

:func:`use_profile` is the one call at the top of every chapter. It resolves the settings
(:func:`labclip_utils.profile.current_profile`), sets torch's threads and every seed, prints which profile runs, and
in the offline profile installs the published prebuilt artefacts when the cache has no miniature yet
(:mod:`labclip_utils.artifacts`). It returns a :class:`ChapterProfile`: the settings plus
:meth:`~ChapterProfile.load_encoder`, so a chapter loads its models from what it was given rather than from the
environment.

With ``$LABCLIP_USAGE_LOG`` set (the rehearsal sets it per chapter), every encoder the session loads counts the images
its image tower processes, for inference and for training (CLIP-FT), into that JSON file: what ``make rehearse``
reports per chapter beside the bytes the mirror served it.
"""

from __future__ import annotations

import json
import threading
import warnings
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from labclip_utils.artifacts import ensure
from labclip_utils.io.files import atomic_write
from labclip_utils.models import load_encoder
from labclip_utils.models.encoder import Encoder
from labclip_utils.profile import Experiment, Profile, current_profile, torch_threads, usage_log
from labclip_utils.reproducibility import seed_everything

_USAGE_LOCK = threading.Lock()


def record_usage(path: Path, experiment: str, kind: str, count: int) -> None:
    """Add ``count`` to ``<experiment>/<kind>`` in the usage file ``path`` (``experiment``: ``synthetic`` or ``real``,
    whose backbones differ; ``kind``: ``loaded``, ``encoded`` or ``trained``), rewritten atomically."""
    with _USAGE_LOCK:
        usage = json.loads(path.read_text()) if path.is_file() else {}
        usage.setdefault(experiment, {}).setdefault(kind, 0)
        usage[experiment][kind] += count
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(usage, indent=1, sort_keys=True)))


def count_images(encoder: Encoder, experiment: str, path: Path, downloaded: bool = True) -> Encoder:
    """Count every image ``encoder``'s image tower processes into ``path`` (a forward hook on ``model.visual``, which
    copies of the model, such as CLIP-FT's, keep): ``trained`` when gradients flow, else ``encoded``; and, when its
    weights are a download on a fresh machine (``downloaded``; a random-init control's are not), that it was
    ``loaded``."""
    if downloaded:
        record_usage(path, experiment, "loaded", 1)
    tower = getattr(encoder.model, "visual", None)
    if tower is None:  # the miniature: nothing a rehearsal estimates a GPU's time from
        return encoder

    def hook(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        kind = "trained" if torch.is_grad_enabled() and module.training else "encoded"
        record_usage(path, experiment, kind, int(args[0].shape[0]))

    tower.register_forward_hook(hook)
    return encoder


def random_encoder(name: str, *, seed: int = 0, device: str = "cpu", precision: str = "fp32",
                   cache_dir: Path | None = None) -> Encoder:
    """An encoder's architecture with random weights drawn from ``seed``, leaving torch's global random state as it
    was: the same control whatever ran before it (the miniature seeds its own initialisation; open_clip models
    draw theirs from the global generator, which earlier cells, cached or not, have advanced differently)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return load_encoder(name, None, device, precision=precision, cache_dir=cache_dir)


@dataclass(frozen=True)
class ChapterProfile(Profile):
    """A resolved :class:`~labclip_utils.profile.Profile` that can load its encoders."""

    def load_encoder(self, experiment: Experiment = "real", *, random_init: bool = False) -> Encoder:
        """The encoder this profile uses for an experiment (``random_init=True``: the same architecture before
        training, the control of every probe). Prints which backbone ran, and warns when the weights are random."""
        model, weights = self.backbone(experiment)
        if random_init and model != "miniature":  # the miniature's random init is seeded by its config already
            encoder = random_encoder(model, device=self.device, precision=self.precision, cache_dir=self.cache_dir)
        else:
            encoder = load_encoder(model, None if random_init else weights, self.device, precision=self.precision,
                                   cache_dir=self.cache_dir)
        log = usage_log()
        if log is not None:  # the control's images cost a GPU as much as the model's
            count_images(encoder, experiment, log, downloaded=not random_init)
        if not random_init:
            print(f"{experiment} experiments run on {encoder.id} ({self.precision})")
            if weights is not None and Path(weights).suffix in (".pt", ".bin", ".safetensors") and "random" in \
                    Path(weights).name:
                print("NOTE: these weights are a random-init stand-in (a rehearsal): every number below is "
                      "meaningless as a result; only the code path is being tested.")
        return encoder


def use_profile(name: str | None = None, *, seed: int = 0, verbose: bool = True) -> ChapterProfile:
    """Resolve the profile for a chapter, seed everything and print which profile runs. In the offline profile,
    install the published prebuilt artefacts when the cache has no miniature yet (:mod:`labclip_utils.artifacts`).

    Also honours ``$LABCLIP_NUM_THREADS`` (the book's runner sets it so that notebooks executing in
    parallel do not fight over the cores).
    """
    settings = current_profile(name)
    profile = ChapterProfile(**{f.name: getattr(settings, f.name) for f in fields(settings)})
    threads = torch_threads()
    if threads:
        torch.set_num_threads(threads)
    seed_everything(seed)
    if profile.name == "paper" and profile.device == "cpu" and profile.fraction >= 1:
        warnings.warn(
            "the 'paper' profile runs a real CLIP on the full datasets; without a GPU this takes hours. "
            "In Colab: Runtime > Change runtime type > GPU.",
            stacklevel=2,
        )
    if verbose:
        print(profile.summary())
    if profile.is_offline:  # the Colab fast path: the published prebuilt miniature, when the cache has none yet
        ensure(profile.cache_dir, verbose=verbose)
    return profile
