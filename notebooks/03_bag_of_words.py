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
# # Is CLIP a bag of words?
#
# Show CLIP an image of a red cube and a blue sphere, and give it two captions: "a red cube and a blue sphere",
# and the **attribute-swapped** "a blue cube and a red sphere". The two captions contain exactly the same words,
# so a model that only checks *which* words appear cannot tell them apart, and picks the right one half of the
# time. This is the {term}`swap test`, the paper's first diagnosis, and the symptom ARO {cite}`yuksekgonul2023aro`
# named *bag-of-words* behaviour. This chapter runs it on held-out combinations, runs
# the paper's retrieval over the whole caption set, looks at the scenes where the model wins and where it fails,
# and repeats the test on the SPAR-like and SPARE-like worlds.

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

from labclip_utils.binding import caption_set, caption_set_retrieval, combination_indices, swap_accuracy
from labclip_utils.diagnostics import evaluation_scenes
from labclip_utils.models import load_encoder
from labclip_utils.plots import plot_scores, plot_swap_gallery, set_book_style
from labclip_utils.publish import publish
from labclip_utils.store import embed_scenes, embed_texts

set_book_style()
encoder = load_encoder(profile.model, profile.pretrained)
scenes = evaluation_scenes(seed=0, image_size=profile.image_size)
test_ds = scenes.pool.select("test")
test, seen = embed_scenes(encoder, test_ds), embed_scenes(encoder, scenes.seen)
print(f"{len(test)} scenes of held-out combinations, {len(seen)} of seen combinations; encoder {encoder.id}")

# %% [markdown]
# ## The swap test
#
# For each image we compare $\cos(\text{image}, \text{caption})$ with $\cos(\text{image}, \text{swapped
# caption})$. We report it twice. **Strict** needs a strictly higher score for the true caption. **Ties as
# correct** counts equal scores as right, as the paper's CLEVR code does. That code also leaves out scenes whose two
# objects have the same colour, where the swap changes nothing. Our scenes always have two different colours.

# %%
swap = pd.DataFrame({
    name: {"strict": swap_accuracy(e.images, e.captions, e.negatives),
           "ties as correct (paper, CLEVR)": swap_accuracy(e.images, e.captions, e.negatives, ties="correct")}
    for name, e in {"held-out combinations": test, "seen combinations": seen}.items()
})
publish("swap_clip_heldout_strict", swap.loc["strict", "held-out combinations"])
swap.round(3)

# %% [markdown]
# Both numbers sit close to 0.5, the score of a bag of words. The model knows which colours and shapes are in the
# scene (the retrieval below shows that), but across the two modalities it does not know which colour belongs to
# which shape.
#
# ## Retrieval over the whole caption set
#
# The paper also ranks *every* possible 2-object caption for each image. Here that is every combination of two
# different colours on two different shapes. We report image→text recall@1/5/10, plus the paper's **reverse
# recall**: the share of images whose top-1 caption is the *swapped* one. A perfect binder scores R@1 = 1 and
# reverse recall = 0. A perfect bag of words cannot separate a caption from its swap, so it splits between them:
# R@1 and reverse recall both about 0.5, and R@5 close to 1.

# %%
combos, captions = caption_set(scenes.pool.attributes, scenes.pool.objects)
caption_emb = embed_texts(encoder, captions)
true_idx = combination_indices(test_ds.pairs, combos)
swap_idx = combination_indices(test_ds.negative_pairs, combos)
pd.Series(caption_set_retrieval(test.images, caption_emb, true_idx, swap_idx), name=f"{len(captions)} captions"
          ).round(3).to_frame()

# %% [markdown]
# ## Wins and failures
#
# Here are the held-out scenes where the model prefers the true caption by the widest margin, and those where it
# prefers the swap by the widest margin. The scores are cosine similarities.

# %%
pos_scores = (test.images * test.captions).sum(-1)
neg_scores = (test.images * test.negatives).sum(-1)
order = (pos_scores - neg_scores).argsort()
fig = plot_swap_gallery(test_ds, order[-4:].flip(0), pos_scores, neg_scores, title="Largest wins")
fig = plot_swap_gallery(test_ds, order[:4], pos_scores, neg_scores, title="Largest failures")
margin = (pos_scores - neg_scores).abs().median().item()
twin = (test.captions * test.negatives).sum(-1).median().item()
print(f"typical (median) score {pos_scores.median().item():.3f}; typical |margin| {margin:.3f}; "
      f"median cos(caption, swapped caption) {twin:.3f}")

# %% [markdown]
# These are the extremes. The last line gives the typical case: the margin between a caption and its swap is a
# small fraction of the score, because the two captions land almost on the same point of the shared space (their
# cosine is printed last). That is what a bag of words would do.
#
# ## SPAR and SPARE: a test that can be passed without binding
#
# The scenes chapter built a SPAR-like world, in which position predicts colour, and a SPARE-like world, in which
# it does not. Below is the same swap test in each world, next to the *caption-only* model from that chapter. That
# model never sees an image, and its score shows how far a world's captions alone give the answer away.

# %%
from labclip_utils.scenes import blind_swap_accuracy, make_scenes

rows = {}
for world in ("clevr", "spar", "spare"):
    ds = make_scenes(3000, world, 2, seed=5, image_size=profile.image_size)
    e = embed_scenes(encoder, ds.select("test"), progress=False)
    rows[world] = {"CLIP (miniature) swap test": swap_accuracy(e.images, e.captions, e.negatives),
                   "caption-only model": blind_swap_accuracy(ds.select("train"), ds.select("test"))}
worlds = pd.DataFrame(rows).T
for world in ("spar", "spare"):
    publish(f"swap_clip_{world}", worlds.loc[world, "CLIP (miniature) swap test"])
    publish(f"blind_{world}", worlds.loc[world, "caption-only model"])
fig = plot_scores(worlds["CLIP (miniature) swap test"].to_dict(), title="Swap test on held-out combinations")
worlds.round(3)

# %% [markdown]
# The model scores about as well on SPAR as on SPARE, and far below the caption-only model on SPAR. It does not use
# the shortcut, because it never trained on SPAR. A method that *is* fitted on SPAR, such as LABCLIP, can learn
# the caption-only shortcut instead of binding, and the caption-only column shows how far that alone would take
# it. Read SPAR scores against that bar, and prefer SPARE.
#
# ## Next to the paper
#
# The paper's CLIP numbers were measured on real CLIP and real renders, and are quoted from secondary sources.

# %%
from labclip_utils.paper import beside_paper

table = pd.concat([
    beside_paper({("swap accuracy (test split)", "CLIP"): swap.loc["ties as correct (paper, CLEVR)",
                                                                   "held-out combinations"]}, setting="CLEVR"),
    beside_paper({("swap accuracy (test split)", "CLIP"): rows["spar"]["CLIP (miniature) swap test"]},
                 setting="PUG:SPAR"),
    beside_paper({("swap accuracy (test split)", "CLIP"): rows["spare"]["CLIP (miniature) swap test"]},
                 setting="PUG:SPARE"),
])
table

# %% [markdown]
# ## Exercises
#
# 1. Make the captions mention the objects in random order (`CaptionStyle(order="random")` in `make_scenes`). Does
#    the swap test change? What does that say about how the text side treats word order?
# 2. Use the paper's caption format without articles (`CaptionStyle(article=False)`). Are the numbers the same?
# 3. Run the swap test with a *replace-attribute* negative (`negative="replace_attribute"`) instead of a swap. Is it
#    easier for the model? Why would it be?
#
# ```{admonition} Solutions
# :class: dropdown
# 1. Build `make_scenes(3000, "clevr", 2, seed=5, style=CaptionStyle(order="random"))` and repeat the test. The
#    miniature's text tower was trained to ignore the order of object phrases, so expect little change.
# 2. The text tower saw captions with and without articles during training, so both formats encode alike.
# 3. A replaced attribute changes the bag of words, and usually names a colour that is not in the image. A bag of
#    words can catch that, so expect a score well above the swap test's. Only swaps and other re-bindings need
#    binding.
# ```
