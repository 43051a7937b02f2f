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
# # Start here
#
# This book reproduces one paper, step by step, with every step executed: *CLIP Behaves like a Bag-of-Words Model
# Cross-modally but not Uni-modally* {cite}`koishigarina2025labclip`. Its question is simple. Show CLIP a red cube
# next to a blue sphere: does it prefer "a red cube and a blue sphere" to "a blue cube and a red sphere"? Its answer
# comes in three parts, and the book follows them: CLIP mostly cannot tell (it reads a caption as a
# {term}`bag of words`), yet the image and the text each carry which colour goes with which object, and one linear
# map on the text side, LABCLIP, repairs most of the match between the two.
#
# Every chapter is a notebook. On this website you read it with the outputs of the last build; the rocket button at
# the top, then *Colab*, opens it in Colab, where it runs on a free machine; and `make book` runs it on your own
# computer.

# %% [markdown] tags=["method"]
# ## The first cell of every chapter
#
# Each chapter begins with the cell below. It chooses the **profile**, that is, what the chapter runs on, and says
# so in one line:
#
# - `offline` (the default): generated scenes and a *miniature* CLIP that trains on a laptop's CPU in minutes.
#   Nothing is downloaded, so it runs anywhere, the same way every time.
# - `paper`: the paper's pretrained CLIP models (open_clip) and its datasets. It needs a GPU and a network.
#
# In Colab, the notebook the rocket button opens has one more cell before this one: it installs the book's helper
# package, `labclip_utils`, and does nothing anywhere else (`make book` has installed it). To switch profile, set
# `PROFILE = "paper"` in this cell or the environment variable `LABCLIP_PROFILE=paper`.

# %% tags=["parameters"]
PROFILE = None  # "offline" or "paper"; None reads $LABCLIP_PROFILE (default: offline)

from labclip_utils import use_profile

profile = use_profile(PROFILE)

# %% [markdown] tags=["method"]
# The line says which profile runs, which models the chapter will use (the miniature, named by its seed, or an
# open_clip model and its weights), where the data comes from, the device and its precision, and the cache folder
# where trained models, embeddings and downloads are kept so that no chapter computes the same thing twice.

# %% [markdown] tags=["method"]
# ## The puzzle in one picture
#
# The book tests CLIP on scenes like these: two coloured objects, a caption (✓) and its *swap*, the same words with
# the two colours exchanged (✗). A model that reads only which words occur cannot tell the two captions apart; it
# would pick the right one half of the time. That is the {term}`swap test` of {doc}`03_bag_of_words`.

# %%
from labclip_utils.book.plots import plot_scene_gallery, set_book_style
from labclip_utils.scenes import make_scenes

set_book_style()
examples = make_scenes(4, "clevr", 2, seed=1, image_size=profile.image_size)
fig = plot_scene_gallery({"two objects": examples}, n=4)

# %% [markdown] tags=["method"]
# ## Your path through the book
#
# 1. {doc}`01_scenes` builds the scenes, their captions and their hard negatives, and the split that keeps some
#    colour–shape combinations out of training.
# 2. {doc}`02_miniature` trains the offline profile's CLIP. Skim it on a first reading: it says what the miniature
#    is built to show, and how far it can be trusted.
# 3. {doc}`03_bag_of_words`: the diagnosis. CLIP, across modalities, behaves like a bag of words.
# 4. {doc}`04_probing`: yet each modality on its own knows which colour goes with which object.
# 5. {doc}`05_modality_gap`: the two embedding clouds are far apart and shaped differently.
# 6. {doc}`06_labclip`: the fix, one matrix $A$ on the text embedding, trained with hard negatives.
# 7. {doc}`07_benchmarks` runs the paper's benchmarks, {doc}`08_playground` lets you type your own captions (it runs
#    in the page itself), and {doc}`09_beyond` asks why CLIP became a bag of words.
#
# The reference part holds the paper's protocol choice by choice ({doc}`10_protocol`), the setup in detail
# ({doc}`11_setup`: every setting, what the paper profile downloads, mirrors for a class, how long each chapter
# took), the {doc}`../book/results`, a guide for {doc}`../book/teaching`, the {doc}`../book/glossary` and the
# {doc}`../book/references`.

# %% [markdown] tags=["method"]
# ## Exercises
#
# 1. Open {doc}`03_bag_of_words` in Colab from the rocket button and run its cells. What does the cell that calls
#    `use_profile` print, and how long does the chapter take before its first figure?
# 2. Look at the four scenes above. For which of them would a model that sees only the *colours* in the image, and
#    not where they are, still pick the right caption?
#
# ```{admonition} Solutions
# :class: dropdown
# 1. It prints the profile line explained above (`offline`, the miniature CLIP named by its seed, the cache
#    folder). Each chapter opened in Colab runs on its own fresh machine, so every one of them first trains the
#    miniature, for minutes, unless a release of the book carries the prebuilt artefacts; {doc}`11_setup` times
#    both paths, and {doc}`../book/teaching` gives the minutes for a class.
# 2. None: each caption and its swap name the same colours and the same shapes, so colours alone never decide. Only
#    which colour sits on which shape does, and that is what the rest of the book measures.
# ```
