# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Mind the gap
#
# CLIP's image and text embeddings do not share their space evenly. They form two clouds, separated by the
# {term}`modality gap` {cite}`liang2022gap` and shaped differently. The paper asks how this geometry relates to
# binding: a caption and its attribute-swapped twin lie so close together that no image can tell them apart,
# while the two clouds stay apart. This chapter measures the gap and the shapes, and looks at the paper's
# Figure 5: how close a caption sits to a *permuted* version of itself, before and after LABCLIP.
#
# ```{admonition} The miniature's gap is not CLIP's
# :class: warning
# The miniature centres each tower's output before its alignment head. This removes most of the offset between
# the two clouds by construction. So in the `offline` profile, read this chapter for the *measurements* and how
# they change with $A$, not as a model of CLIP's gap. In the `paper` profile the same cells measure a real CLIP.
# ```

# %% tags=["parameters"]
PROFILE = None  # "offline" or "paper"; None reads $LABCLIP_PROFILE (default: offline)

import subprocess
import sys

if "google.colab" in sys.modules:  # Colab only: install the helper package from the repository
    url = "git+https://github.com/labclip-book/labclip-book"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"labclip-utils @ {url}"], check=True)

from labclip_utils import use_profile

profile = use_profile(PROFILE)

# %%
import pandas as pd

from labclip_utils.diagnostics import evaluation_scenes, fit_scene_labclip
from labclip_utils.gap import centroid_gap, effective_dimension, explained_variance, pair_cosines, random_pair_cosines
from labclip_utils.models import load_encoder
from labclip_utils.plots import plot_clouds, plot_histograms, plot_spectra, set_book_style
from labclip_utils.publish import publish
from labclip_utils.store import embed_scenes, embed_texts

set_book_style()
encoder = load_encoder(profile.model, profile.pretrained)
scenes = evaluation_scenes(seed=0, image_size=profile.image_size)
pool = embed_scenes(encoder, scenes.pool)
train, test = pool.select("train"), pool.select("test")
A = fit_scene_labclip(encoder, scenes, progress=False).model  # the A of chapter "One matrix fixes it" (cached)
print(f"held-out test scenes: {len(test)}; LABCLIP fitted on {len(train)} training scenes")

# %% [markdown]
# ## How far apart, how differently shaped
#
# The **gap** is the distance between the centroids of the L2-normalised image embeddings and the normalised
# caption embeddings. For the **shape**, we use each cloud's *effective dimension*, the participation ratio of its
# covariance spectrum: how many directions the cloud really spreads along.

# %%
geometry = pd.DataFrame({
    "centroid gap (images ↔ captions)": {"CLIP": centroid_gap(test.images, test.captions),
                                         "LABCLIP": centroid_gap(test.images, A.map_texts(test.captions))},
    "effective dimension, images": {"CLIP": effective_dimension(test.images),
                                    "LABCLIP": effective_dimension(test.images)},
    "effective dimension, captions": {"CLIP": effective_dimension(test.captions),
                                      "LABCLIP": effective_dimension(A.map_texts(test.captions))},
})
fig = plot_clouds(test.images, test.captions)
publish("gap_clip", geometry.loc["CLIP", "centroid gap (images ↔ captions)"])
publish("gap_labclip", geometry.loc["LABCLIP", "centroid gap (images ↔ captions)"])
geometry.round(3)

# %%
fig = plot_spectra({"images": explained_variance(test.images), "captions": explained_variance(test.captions),
                    "captions after A": explained_variance(A.map_texts(test.captions))})

# %% [markdown]
# ## Where the scores live
#
# The swap test compares two cosines. Here are their distributions over the held-out scenes: image with its true
# caption, with its swapped caption, and with a random other scene's caption. The first two almost coincide for
# CLIP, which is the bag-of-words behaviour. LABCLIP pulls them apart.

# %%
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), sharey=True)
for ax, (name, f) in zip(axes, {"CLIP": lambda t: t, "LABCLIP": A.map_texts}.items(), strict=True):
    plot_histograms({"true caption": pair_cosines(test.images, f(test.captions)),
                     "swapped caption": pair_cosines(test.images, f(test.negatives)),
                     "random caption": random_pair_cosines(test.images, f(test.captions))},
                    title=f"cos(image, caption), {name}", ax=ax)

# %% [markdown]
# ## The paper's Figure 5: captions and their permutations
#
# The paper compares a caption with a **permuted** version of itself, the same object phrases in the other order
# ("a blue sphere and a red cube"), and with its swap. A permutation means the same thing, and a swap does not.
# A good text space keeps permutations close and pushes swaps away. Here are both cosines, before and after $A$.

# %%
from labclip_utils.scenes import caption_text

test_ds = scenes.pool.select("test")
permuted = embed_texts(encoder, [caption_text(p[::-1]) for p in test_ds.pairs])
fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), sharey=True)
for ax, (name, f) in zip(axes, {"CLIP": lambda t: t, "LABCLIP": A.map_texts}.items(), strict=True):
    plot_histograms({"permuted caption": pair_cosines(f(test.captions), f(permuted)),
                     "swapped caption": pair_cosines(f(test.captions), f(test.negatives))},
                    title=f"cos(caption, other caption), {name}", ax=ax)
medians = pd.DataFrame({name: {"permuted": pair_cosines(f(test.captions), f(permuted)).median().item(),
                               "swapped": pair_cosines(f(test.captions), f(test.negatives)).median().item()}
                        for name, f in {"CLIP": lambda t: t, "LABCLIP": A.map_texts}.items()})
medians.round(3)

# %% [markdown]
# The table gives the medians of the histograms. Read it against the swap test. What matters is how far a caption
# sits from its swap *compared with* its permutation, not the absolute values: the permutation should stay the
# nearer of the two.
#
# ## Exercises
#
# 1. Measure the gap on *seen* combinations (`scenes.seen`) as well. Does it depend on whether the combination was
#    seen?
# 2. Subtract each cloud's mean before computing the swap test. Does closing the gap this way change the swap
#    accuracy? Why (not)?
# 3. In the `paper` profile, compare the centroid gap of `ViT-B-32`/`openai` with the miniature's. Which parts of this
#    chapter change?
#
# ```{admonition} Solutions
# :class: dropdown
# 1. Compute `centroid_gap` on `embed_scenes(encoder, scenes.seen)` in the same way.
# 2. Subtracting a constant from every caption moves the caption and its swap by the same vector. The
#    comparison *within* a pair changes only through re-normalisation, so do not expect a large effect: the gap and
#    the binding failure are different problems.
# 3. The centroid gap and the random-pair histogram move the most, because CLIP's clouds sit far apart. The
#    swap-versus-true comparison is the binding question, and stays.
# ```
