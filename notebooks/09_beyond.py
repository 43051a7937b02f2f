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

# %% [markdown] tags=["method"]
# # Beyond the paper: why does CLIP become a bag of words?
#
# The paper shows *that* CLIP binds inside each modality and not across them, and that a linear map repairs much of
# it. Two questions follow, and recent work has begun to answer them. This chapter runs a small, executed version
# of each on the scenes of this book.
#
# 1. **What in the training data makes the bag of words?** Gurung, Hoffmann and Brox {cite}`gurung2025binding`
#    trace it to common properties of web captions: most describe only some of the objects in an image, with few
#    attributes each. We train the same tiny CLIP end to end twice, once on captions that describe every object and
#    once on captions that describe one object of the scene, and run the paper's diagnosis on both.
# 2. **How is binding stored in an embedding?** Uselis, Koishigarina and Oh {cite}`uselis2026bind` study when
#    embeddings bind concepts, and find that binding generalises when training covers enough combinations. One
#    simple way an embedding can bind is {term}`additively <additive binding>`: a scene's embedding is (close to)
#    the sum of its objects' embeddings. We test that directly on the miniature.

# %% tags=["parameters"]
PROFILE = None  # "offline" or "paper"; None reads $LABCLIP_PROFILE (default: offline)

from labclip_utils import use_profile

profile = use_profile(PROFILE)

# %% [markdown]
# ## Full captions or one-object captions
#
# Both models have the miniature's architecture and are trained the way CLIP is: both towers and the heads
# together, the CLIP loss, random batches of image–caption pairs. The only difference is the captions. *Full*
# captions name every object with its colour ("a red cube and a blue sphere"). *One-object* captions name one object
# of the scene, picked at random each time ("a blue sphere"), as most alt-text mentions only part of an image.
# Training is short (400 steps of 64 pairs; the table's last column gives the seconds each model took when it was
# trained), and each model is cached after its first run. The diagnosis uses a quarter of the usual evaluation scenes.

# %%
import pandas as pd

from labclip_utils.book.claims import claim
from labclip_utils.book.plots import legend_outside, set_book_style
from labclip_utils.book.tables import show
from labclip_utils.diagnosis import diagnose
from labclip_utils.models.end_to_end import EndToEndConfig, load_end_to_end
from labclip_utils.scenes import evaluation_scenes

set_book_style()

# %%
scenes = evaluation_scenes(seed=0, image_size=64, fraction=0.25 * profile.fraction)  # a quarter of the usual pool
steps = profile.scaled(400, minimum=20)
models = {captions: load_end_to_end(EndToEndConfig(captions=captions, steps=steps, batch_size=64, n_train=12_000),
                                   cache_dir=profile.cache_dir)
          for captions in ("full", "one_object")}
rows = {}
for captions, model in models.items():
    d = diagnose(model, scenes, n_probe=2000, directions=False)
    rows[f"{captions.replace('_', '-')} captions"] = {
        "swap test (held-out)": d.swap.heldout, "image probe (held-out)": d.probes["image emb."].heldout,
        "bag-of-words probe (held-out)": d.probes["bag of words"].heldout,
        "LABCLIP swap (held-out)": d.swap_after.heldout, "LABCLIP swap (seen)": d.swap_after.seen,
        "training (s)": model.history["seconds"][0]}
end_to_end = pd.DataFrame(rows).T
ax = end_to_end[["swap test (held-out)", "image probe (held-out)", "LABCLIP swap (held-out)"]].T.plot.bar(
    rot=0, figsize=(9, 3.4), title="A tiny CLIP trained end to end")
ax.axhline(0.5, color="black", ls=":", lw=1)
ax.set_ylabel("accuracy")
legend_outside(ax)  # beside the axes: inside, it can cover the chance line or a bar, depending on the numbers
show(end_to_end)

# %% [markdown]
# With full captions the tiny CLIP binds across modalities: the swap test is far above chance, with no hard
# negatives and no $A$. In our scenes every caption names every object with its colour, so the contrastive loss
# can only match an image to its caption by binding. With one-object captions the same model on the same images
# becomes a bag of words: the swap test falls towards chance. Its image embedding also binds less (the image probe
# drops), so LABCLIP has less to work with and repairs less than on the miniature, whose image tower binds well.
# Both effects are what Gurung et al. describe for web-scale CLIP: the data's captions decide whether the loss
# rewards binding.
#
# One oddity in the table we have not explained: with full captions, LABCLIP does worse on the combinations it was
# fitted on ({glue:text}`e2e_labclip_seen:.3f`) than on held-out ones ({glue:text}`e2e_labclip_heldout:.3f`). This
# is one seed of a different model from the miniature, trained end to end, whose spread over seeds we have not
# measured; read the held-out value as "well above chance", not to the third decimal.

# %% tags=["remove-cell"]
from labclip_utils.book.publish import publish

full, one = end_to_end.loc["full captions"], end_to_end.loc["one-object captions"]
publish("e2e_full_swap", full["swap test (held-out)"])
publish("e2e_one_object_swap", one["swap test (held-out)"])
claim("with full captions the swap test is far above chance", full["swap test (held-out)"], above=0.75)
claim("with one-object captions the swap test falls towards chance", full["swap test (held-out)"]
      - one["swap test (held-out)"], above=0.15)
claim("one-object captions bind less in the image embedding", full["image probe (held-out)"]
      - one["image probe (held-out)"], above=0.0)
seen = publish("e2e_labclip_seen", full["LABCLIP swap (seen)"])
heldout = publish("e2e_labclip_heldout", full["LABCLIP swap (held-out)"])
claim("the oddity: with full captions, LABCLIP on seen combinations is below held-out", heldout - seen, above=0.0)
claim("... and the held-out value is well above chance", heldout, above=0.7)

# %% [markdown]
# ## Is a scene the sum of its objects?
#
# Render each object of a two-object scene alone, at the same place and size, on the same background; embed both
# single-object images and add the embeddings. If the scene's embedding is close to that sum, each object
# contributes its own colour-and-shape vector, and binding is *additive*. The control is the sum for the swapped
# scene: the same two colours and the same two shapes, bound the other way, each rendered alone. An additive
# embedding is closer to its own sum than to the swapped one. The bag-of-words ceiling for this test is one half:
# both sums contain the same colours and shapes.

# %%
from labclip_utils.additivity import additive_decomposition, summary

encoder = profile.load_encoder("synthetic")
control = profile.load_encoder("synthetic", random_init=True)
heldout = scenes.heldout()
n = profile.scaled(300, minimum=50)
additive = pd.DataFrame({label: summary(additive_decomposition(model, heldout, n=n))
                         for label, model in {profile.label("synthetic"): encoder,
                                              "random init": control,
                                              "end-to-end, full captions": models["full"],
                                              "end-to-end, one-object captions": models["one_object"]}.items()}).T
show(additive)

# %% [markdown]
# The miniature's image embedding is close to the sum of its objects', and for nearly every held-out scene it is
# closer to its own sum than to the swapped one: binding here is additive, which is why a *linear* probe (and a
# linear $A$) can read it. The random-init tower is far less decisive. This is the mechanism Uselis et al. analyse:
# an additive code generalises to new combinations only as far as each object's vector is learned from enough
# combinations, which is what we saw when held-out LABCLIP grew with the number of training scenes in
# {doc}`02_miniature`.

# The two end-to-end models add something the miniature alone cannot show. The one-object model is at least as
# additive as the full-caption one ({glue:text}`e2e_one_object_additive:.3f` of held-out scenes closer to their own
# sum, against {glue:text}`e2e_full_additive:.3f`), yet it fails the swap test. Additivity is a property of the
# image embedding alone, and one-object captions reward exactly that: each caption must match one object of the
# image whatever the other object is, so each object is pushed to contribute its own vector. An additive image
# embedding says the binding *can* be read from it, not that the cosine reads it. The cosine reads it only when
# the loss compares an image with captions that differ in binding alone, which full captions provide and one-object
# captions never do.

# %% tags=["remove-cell"]
share = "share closer to its own sum"
full_add = publish("e2e_full_additive", additive.loc["end-to-end, full captions", share])
one_add = publish("e2e_one_object_additive", additive.loc["end-to-end, one-object captions", share])
claim("the one-object model is at least as additive as the full-caption one", one_add - full_add, above=-0.02)
claim("the one-object model fails the swap test (no better than near chance)", one["swap test (held-out)"],
      below=0.65)

# %% tags=["remove-cell"]
mini = additive.loc[profile.label("synthetic")]
publish("additive_share", mini["share closer to its own sum"])
claim("the scene is close to the sum of its objects", mini["median cos(scene, own singles)"], above=0.8)
claim("nearly every scene is closer to its own sum", mini["share closer to its own sum"], above=0.85)
claim("the random-init tower is far less decisive", mini["share closer to its own sum"]
      - additive.loc["random init", "share closer to its own sum"], above=0.1)

# %% tags=["remove-cell"]
# Exercise 2's answer, computed here so that the solution below quotes it.
seen_share = publish("ex_additive_seen", summary(additive_decomposition(encoder, scenes.seen, n=n))[
    "share closer to its own sum"])
claim("seen and held-out scenes are about equally additive", abs(seen_share - mini["share closer to its own sum"]),
      below=0.1)

# %% [markdown]
# ## Exercises
#
# 1. *Take-home* (minutes of training). Train the end-to-end model with
#    `EndToEndConfig(captions="one_object", steps=600)`. Does longer training bring binding back?
# 2. Run `additive_decomposition` on the *seen* scenes (`scenes.seen`). Is the miniature more additive on
#    combinations it was trained on?
#
# ```{admonition} Solutions
# :class: dropdown
# 1. Expect not, and check it with `diagnose` as in the table above: a one-object caption is matched equally well
#    by every scene that contains that object, whatever the other object's colour, so more steps of the same loss
#    give the model no reason to bind.
# 2. Hardly: {glue:text}`ex_additive_seen:.3f` of the seen scenes are closer to their own sum, against
#    {glue:text}`additive_share:.3f` of the held-out ones, because the local image tower computes each object's
#    features on its own.
# ```
