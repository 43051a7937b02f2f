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
# # Setting up
#
# The reference for running the book: what the machine that built this website has, every setting, what the
# `paper` profile downloads and how long each of its chapters would take on Colab's free GPU, mirrors for a class,
# the two ways a Colab session gets the miniature, timed, and how long the offline book took. {doc}`00_start_here`
# explains the first cell that every chapter starts with, and the two profiles.

# %% tags=["parameters"]
PROFILE = None  # "offline" or "paper"; None reads $LABCLIP_PROFILE (default: offline)

from labclip_utils import use_profile

profile = use_profile(PROFILE)

# %% [markdown]
# ## What this machine has
#
# This table is rebuilt each time the chapter runs. On the website it describes the machine that built the book.

# %%
import pandas as pd
from IPython.display import display

from labclip_utils.book.claims import claim
from labclip_utils.book.environment import environment_report, notebook_run_times, paper_downloads_table, profiles_table
from labclip_utils.book.plots import plot_run_times, set_book_style
from labclip_utils.book.tables import show

set_book_style()
show(environment_report(profile))

# %% [markdown]
# ## What each profile needs and downloads
#
# The `offline` profile never touches the network. The `paper` profile downloads model weights and datasets
# into the cache folder shown above, the first time a chapter asks for them. You can move that folder with
# `LABCLIP_CACHE_DIR`, and the datasets alone with `LABCLIP_DATA_DIR`. Every setting:

# %%
from labclip_utils.profile import settings_table

show(settings_table())

# %% [markdown]
# **A mirror for a class.** Behind a firewall, or to download COCO once for a room of students, put the files in a
# folder (or serve it over HTTP) with one subfolder per dataset and the official file names, for example
# `mirror/coco/val2014.zip` and `mirror/aro/visual_genome_relation.json`, and set `LABCLIP_MIRROR` to it. To serve
# the folder to a room, run `python -m labclip_utils mirror manifest FOLDER` once (it writes `SHA256SUMS`, which
# every client checks its files against) and `python -m labclip_utils mirror serve FOLDER --port 8000`, then set
# `LABCLIP_MIRROR=http://<your machine>:8000` on the students' machines. Interrupted downloads resume.

# %%
show(profiles_table())

# %% [markdown]
# The `paper` profile fetches the items below. The sizes are the ones the datasets' own pages publish ("not
# published" where they give none). Nothing here is fetched until a chapter that needs the item runs in the
# `paper` profile.

# %%
show(paper_downloads_table())

# %% [markdown]
# ## The paper profile in Colab: chapter by chapter
#
# What each chapter downloads and encodes in the `paper` profile at full scale, and roughly how long it takes on
# Colab's free T4 GPU. Each chapter is counted as Colab runs it, on its own machine: it downloads its weights and
# encodes every image it uses, its random-init control's included (run in reading order on one machine, the chapters
# share what they cached and take less). The image counts follow the chapters' own calls and the datasets'
# published sizes; a training step counts as three image passes. The times are **estimates**, not measurements: the
# encoders' published cost per image (open_clip's model profile) divided by a share of the T4's published peak, or
# the rate at which Colab's two CPU cores can decode photographs, whichever is slower, plus the downloads, with the
# assumptions listed below.

# %%
from labclip_utils.book.environment import T4_ASSUMPTIONS, paper_workload

workload = paper_workload()
show(workload)

# %%
show(pd.Series(T4_ASSUMPTIONS, name="assumed").to_frame())

# %% [markdown]
# Two chapters do not fit a class at full size. Chapter {doc}`06_labclip`'s CLIP-FT baseline fine-tunes the whole
# ViT-L/14 for the paper's 50 epochs: about {glue:text}`full_06_minutes:.0f` minutes on a T4. Chapter
# {doc}`07_benchmarks` downloads about {glue:text}`full_07_gb:.0f` GB (whole COCO, PUG and CLEVR archives) and reads a
# quarter of a million photographs. Run them ahead of class, share one download through a mirror (above), or use
# the class size below.
#
# ## The paper profile in class time
#
# `LABCLIP_SIZE=class` (with `PROFILE = "paper"`) keeps every chapter within
# {glue:text}`class_budget_gb:.0f` GB of downloads and {glue:text}`class_budget_minutes:.0f` minutes on a T4, each
# chapter on its own Colab machine. Two chapters change, and say so when they run: {doc}`06_labclip`'s CLIP-FT runs
# one epoch instead of 50 (labelled as shortened), and {doc}`07_benchmarks` runs COCO retrieval and COCO-Order on
# {glue:text}`class_coco_images:,.0f` of the 5,000 Karpathy test images, SugarCrepe on
# {glue:text}`class_sugarcrepe_items:,.0f` of its 7,512 items, ARO in full, with the $A$ the authors released for
# ViT-B/32. The subsets are fixed, the same for every class: of the items in the official annotation file, the ones
# with the smallest SHA-256 of `"labclip-class:<key>"` (the key is the image's file name for COCO,
# `<subset>:<index>` for SugarCrepe). Their photographs have official per-image addresses on COCO's server, so only
# they are fetched, one by one, instead of the whole `val2014` and `val2017` archives (their sizes are in the download
# table above). ARO's images come only as one zip, which fits the budget. CLEVR and PUG:SPARE (Google Drive zips
# whose sizes are not published) and PUG:SPAR (one archive of about 16 GB) are not run at class size;
# {doc}`02_miniature` through {doc}`06_labclip` run the swap test on generated scenes instead. The other chapters
# are the same at both sizes. The budget is per chapter, each on its own Colab machine: the longest chapter at class
# size is {doc}`06_labclip`, about {glue:text}`class_longest_minutes:.0f` minutes; the largest download is
# {doc}`07_benchmarks`'s, about {glue:text}`class_largest_gb:.1f` GB. The chapters on generated scenes download the
# weights of the paper's ViT-L/14 ({glue:text}`class_scene_gb:.2f` GB; {doc}`06_labclip` also the released $A$ and
# two small tokeniser models); {doc}`07_benchmarks` loads ViT-B/32 instead. Run one after another, each as on a fresh
# machine, the eight chapters of the table take about {glue:text}`class_total_minutes:.0f` T4 minutes in all.

# %%
from labclip_utils.profile import CLASS_BUDGET

class_workload = paper_workload("class")
show(class_workload)

# %% [markdown]
# `make rehearse` runs every code path of these tables on a CPU, against a local mirror of stand-in files in each
# dataset's real format and random-init checkpoints, at 1% of the full size (`LABCLIP_FRACTION=0.01`; every count keeps
# a chapter's minimum, so a small count shrinks less than 100 times), and {doc}`06_labclip` and {doc}`07_benchmarks`
# once more at class size: their rows below come from that run. Each chapter runs as on its own machine, with its own
# data folder and cache: the mirror server counts the bytes and files it serves each chapter, and the chapter's encoders
# (controls included) count the images they encode and train on. From the files a chapter fetched the rehearsal computes
# what they weigh on the real datasets (published sizes; for the images fetched one by one, the subset's size times the
# mean image size). It compares the image passes it measured with the ones the estimate above predicts at the same 1%,
# and where a chapter processed more than predicted, its T4 estimate is scaled up by that ratio. It fails when a chapter
# exceeds the budget. The columns of the last rehearsal recorded in the repository, below:
#
# - *fetched (MB, stand-ins)*, *files fetched*, *images fetched one by one*: what the mirror served the chapter (the
#   stand-in files are small; the weights come from a local file, so the chapters on generated scenes fetch nothing
#   but {doc}`06_labclip`'s released $A$ and tokenisers);
# - *images encoded*, *images trained on*: what the chapter's image towers processed, controls included;
# - *image passes (measured)* and *(model, same fraction)*: those counts with a training step as three passes, and
#   what the estimate predicts at 1%. The model counts an upper bound where a chapter reuses images (a caption variant
#   of scenes it already encoded) and {doc}`07_benchmarks`'s stand-in datasets are smaller than the real ones, so
#   measured passes can be lower, never higher without raising the estimate;
# - *class download (GB, real data)*: what the files the chapter fetched weigh at their published sizes, weights
#   included; *T4 estimate (min)*: the estimate above, scaled up where the measured passes exceed the model's;
#   *within budget*: both within {glue:text}`class_budget_gb:.0f` GB and {glue:text}`class_budget_minutes:.0f`
#   minutes.

# %%
from labclip_utils.records import read_rehearsal

rehearsal = read_rehearsal(required=False)
if rehearsal is None:
    print("no rehearsal is recorded in this checkout: run `python tools/rehearse.py --record`")
else:
    print(f"measured at commit {rehearsal['commit'].iloc[0]} on {rehearsal['date'].iloc[0]}")
    display(show(rehearsal.drop(columns=["commit", "date"])))

# %% tags=["remove-cell"]
from labclip_utils.benchmarks.subsets import CLASS_ITEMS
from labclip_utils.book.publish import publish

claim("CLIP-FT takes hours at the paper's 50 epochs",
      publish("full_06_minutes", workload.loc["06_labclip", "T4 estimate (min)"]), above=60)
claim("chapter 7 downloads tens of GB",
      publish("full_07_gb", workload.loc["07_benchmarks", "download (GB, published sizes)"]), above=10)
publish("class_budget_gb", CLASS_BUDGET["download (GB)"])
publish("class_budget_minutes", CLASS_BUDGET["T4 minutes"])
publish("class_coco_images", CLASS_ITEMS["coco_test_images"])
publish("class_sugarcrepe_items", CLASS_ITEMS["sugarcrepe_items"])
publish("class_longest_minutes", class_workload["T4 estimate (min)"].max())
publish("class_largest_gb", class_workload["download (GB, published sizes)"].max())
publish("class_total_minutes", class_workload["T4 estimate (min)"].sum())
scene_only = class_workload.drop(index=["06_labclip", "07_benchmarks"])["download (GB, published sizes)"]
claim("the other generated-scene chapters download ViT-L/14's weights, 0.89 GB", scene_only.min(), between=(0.89, 0.89))
claim("and nothing else", scene_only.max(), between=(0.89, 0.89))
publish("class_scene_gb", scene_only.max())
claim("the longest chapter at class size is LABCLIP's",
      float(class_workload["T4 estimate (min)"].idxmax() == "06_labclip"), between=(1.0, 1.0))
claim("the largest download at class size is the benchmarks chapter's",
      float(class_workload["download (GB, published sizes)"].idxmax() == "07_benchmarks"), between=(1.0, 1.0))
claim("at class size every chapter downloads within the budget",
      class_workload["download (GB, published sizes)"].max(), below=CLASS_BUDGET["download (GB)"])
claim("at class size every chapter runs within the budget on a T4", class_workload["T4 estimate (min)"].max(),
      below=CLASS_BUDGET["T4 minutes"])
if rehearsal is not None:
    claim("the recorded rehearsal found every chapter within the class budget",
          float(rehearsal["within budget"].all()), between=(1.0, 1.0))
    claim("it measured every chapter at class size", float(set(rehearsal.index) == set(class_workload.index)),
          between=(1.0, 1.0))

# %% [markdown]
# ## Colab in class time: the prebuilt artefacts
#
# In Colab every chapter runs on a fresh machine, so each one would train the miniature again before showing
# anything. `make artifacts` packs what a build of the book cached (the miniature, the scene embeddings the chapters
# share, the LABCLIP fits) into one archive that a release carries; a chapter's first cell downloads it when it is
# published, checks its SHA-256, and says so, and otherwise trains the miniature and says that. Here are both paths
# on this machine: packing this build's cache, then installing it into an empty cache and loading the miniature
# from it, against training the miniature from scratch.

# %%
import tempfile
import time
from pathlib import Path

from labclip_utils.artifacts import install, pack, published
from labclip_utils.models.miniature_training import load_miniature

if profile.is_offline:
    trained = profile.load_encoder("synthetic")
    train_s = trained.history["timings"]["total_s"][0]  # the stages' sum (the other keys are the stages)
    with tempfile.TemporaryDirectory() as tmp:
        archive = pack(profile.cache_dir, Path(tmp) / "out")
        start = time.perf_counter()
        install(archive, Path(tmp) / "cache")
        loaded = load_miniature("seed0", cache_dir=Path(tmp) / "cache", progress=False)
        fast_s = time.perf_counter() - start
        size_mb = archive.stat().st_size / 1e6
    assert not loaded.trained_now
    paths = pd.DataFrame({
        "seconds on this machine": {"train the miniature (no archive)": train_s,
                                    "unpack the archive and load the miniature": fast_s},
        "what else a Colab session adds": {"train the miniature (no archive)": "installing the package",
                                           "unpack the archive and load the miniature":
                                               f"installing the package; downloading {size_mb:.0f} MB"}})
    status = "published" if published().url else "not published yet: chapters train the miniature"
    print(f"prebuilt artefacts for this version: {status}")
    display(show(paths.rename_axis("path"), precision=1))

# %% tags=["remove-cell"]
if profile.is_offline:
    claim("the archive is much faster than training", train_s / fast_s, above=5)

# %% [markdown]
# ## How long the offline book takes
#
# `make book` executes every chapter once: two at a time, each in a fresh kernel. This chapter runs last,
# so it can read how long the others took. A first build also trains the miniature once before the chapters start
# (the table above gives its time on this machine); the chapters then load it. The figure comes from that run's own
# report. If you open this notebook on its own (in Colab, say), that report does not exist, and the cell says so.

# %%
times = notebook_run_times()
if times is None:
    print("No run report here: run `make book` to execute the whole book and time each chapter.")
else:
    plot_run_times(times)
    n = len(times)
    print(f"{n} chapter{'s' * (n != 1)} executed before this one, {times['seconds'].sum():.0f} s of notebook time.")

# %% [markdown]
# ## Exercises
#
# 1. Run `make book` a second time. Which chapters get faster, and why? (Look in the cache folder: the environment
#    table above names it.)
# 2. Open any chapter in Colab from the rocket button, choose a GPU runtime, set `PROFILE = "paper"` and run the
#    first two cells. Which model does the profile line report, and where would its downloads go?
# 3. `labclip_utils.benchmarks.downloads.DATASETS` lists every file the paper profile can fetch. Which datasets
#    come from Google Drive, and which one can only be downloaded by hand?
#
# ```{admonition} Solutions
# :class: dropdown
# 1. The miniature's weights, the scene embeddings and the offline benchmark files are cached under
#    `LABCLIP_CACHE_DIR` (`.cache/labclip` with `make`), keyed by everything that determines them. The second run
#    loads them instead of training and encoding, so the chapters that train (the miniature's) or encode many
#    scenes get much faster; the build itself stays the same.
# 2. `ViT-L-14/openai` for the synthetic experiments and `ViT-B-32/openai` for the real benchmarks, on `cuda`;
#    downloads go to `~/.cache/labclip` unless `LABCLIP_CACHE_DIR` says otherwise.
# 3. `[name for name, files in DATASETS.items() if any(f.url == GDRIVE for f in files)]`: `clevr`, `clevr_multi`,
#    `aro` and `pug_spare` come from Google Drive (through gdown). Flickr30k's images need a licence form, so
#    `fetch_dataset("flickr30k", ...)` explains where to get them.
# ```

# %% tags=["remove-cell"]
# Exercise 3's answer, checked against the registry (a new Google Drive source makes the solution above stale).
from labclip_utils.benchmarks.downloads import DATASETS, GDRIVE, MANUAL

drive = {name for name, files in DATASETS.items() if any(f.url == GDRIVE for f in files)}
assert drive == {"clevr", "clevr_multi", "aro", "pug_spare"}, f"exercise 3's solution names the wrong datasets: {drive}"
assert set(MANUAL) == {"flickr30k"}, f"exercise 3's solution names the wrong manual download: {set(MANUAL)}"
