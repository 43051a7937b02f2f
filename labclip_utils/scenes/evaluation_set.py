"""The book's evaluation scenes: one pool with the compositional split, and fresh images of seen combinations.

(The evaluation *runner*, which scores any task, is :mod:`labclip_utils.evaluation`.)
"""

from __future__ import annotations

from dataclasses import dataclass

from labclip_utils.scenes.dataset import SceneDataset, make_scenes


@dataclass
class EvalScenes:
    """Scenes for a diagnosis: ``pool`` (compositional split: fit probes and A on train, watch val, test on test)
    and ``seen`` (fresh images of training combinations)."""

    pool: SceneDataset
    seen: SceneDataset

    def heldout(self) -> SceneDataset:
        """The pool's test split: scenes of combinations that no training stage saw."""
        return self.pool.select("test")


def evaluation_scenes(seed: int = 0, n_pool: int = 36_000, n_seen: int = 3_000, image_size: int = 64,
                      fraction: float = 1.0, **scene_kwargs) -> EvalScenes:
    """2-object CLEVR-like evaluation scenes, drawn independently of any training scenes. The pool is large (about
    29,000 training scenes for A): with the paper's 50 epochs, A keeps improving on held-out combinations up to
    about that many optimiser steps. ``fraction`` (a profile's ``LABCLIP_FRACTION``) shrinks both counts, keeping at
    least a few hundred scenes in the pool."""
    if fraction < 1:
        n_pool, n_seen = max(300, int(n_pool * fraction)), max(100, int(n_seen * fraction))
    pool = make_scenes(n_pool, "clevr", 2, seed=20_000 + seed, image_size=image_size, **scene_kwargs)
    seen = make_scenes(n_seen, "clevr", 2, seed=30_000 + seed, image_size=image_size, **scene_kwargs)
    return EvalScenes(pool, seen.select("train"))
