"""Synthetic scenes: CLEVR-like, SPAR-like and SPARE-like worlds with captions, hard negatives and splits.

>>> from labclip_utils.scenes import make_scenes
>>> ds = make_scenes(1000, world="clevr", n_objects=2, seed=0)
>>> image, caption, negative, labels = ds[0]
"""

from labclip_utils.scenes.captions import CaptionStyle, bag_of_words, caption_set, caption_text, combination_indices
from labclip_utils.scenes.dataset import Sample, SceneDataset, SceneSettings, make_scenes
from labclip_utils.scenes.evaluation_set import EvalScenes, evaluation_scenes
from labclip_utils.scenes.formats import load_scenes, read_clevr, read_pug_spar, read_pug_spare, save_scenes
from labclip_utils.scenes.negatives import (
    BAG_PRESERVING,
    NEGATIVES,
    NoNegative,
    add_object,
    replace_attribute,
    replace_object,
    same_scene,
    swap_attributes,
    swap_objects,
)
from labclip_utils.scenes.render import render
from labclip_utils.scenes.shortcut import blind_swap_accuracy
from labclip_utils.scenes.splits import compositional_split, iid_split, split_report
from labclip_utils.scenes.world import CLEVR_COLORS, SHAPES, SPAR_PAIRS, WORLDS, SceneObject, SceneRecord

__all__ = [
    "BAG_PRESERVING", "CLEVR_COLORS", "NEGATIVES", "SHAPES", "SPAR_PAIRS", "WORLDS",
    "CaptionStyle", "EvalScenes", "NoNegative", "Sample", "SceneDataset", "SceneObject", "SceneRecord",
    "SceneSettings", "add_object", "bag_of_words", "blind_swap_accuracy", "caption_set", "caption_text",
    "combination_indices", "compositional_split", "evaluation_scenes", "iid_split", "load_scenes", "make_scenes",
    "read_clevr", "read_pug_spar", "read_pug_spare", "render", "replace_attribute", "replace_object", "same_scene",
    "save_scenes", "split_report", "swap_attributes", "swap_objects",
]
