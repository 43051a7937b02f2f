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
# Every chapter starts with the same cell. It picks the **profile**, that is, what the chapter runs on.
# Inside Colab it also installs this book's helper package, `labclip_utils`. On your machine that was
# already done by `make book`.
#
# - `offline` (the default) uses generated scenes and a miniature CLIP that trains on your CPU. It downloads nothing.
# - `paper` uses a pretrained open_clip model and the paper's datasets. It needs a GPU and internet access.
#
# To switch, set `PROFILE = "paper"` below, or set the environment variable `LABCLIP_PROFILE=paper` before you
# start Jupyter.

# %% tags=["parameters"]
PROFILE = None  # "offline" or "paper"; None reads $LABCLIP_PROFILE (default: offline)

import subprocess
import sys

if "google.colab" in sys.modules:  # Colab only: install the helper package from the repository
    url = "git+https://github.com/labclip-book/labclip-book"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"labclip-utils @ {url}"], check=True)

from labclip_utils import use_profile

profile = use_profile(PROFILE)

# %% [markdown]
# ## What this machine has
#
# This table is rebuilt each time the chapter runs. On the website it describes the machine that built the book.

# %%
from labclip_utils.environment import environment_report, notebook_run_times, paper_downloads_table, profiles_table
from labclip_utils.plots import plot_run_times, set_book_style

set_book_style()
environment_report(profile)

# %% [markdown]
# ## What each profile needs and downloads
#
# The `offline` profile never touches the network. The `paper` profile downloads model weights and datasets
# into the cache folder shown above, the first time a chapter asks for them. You can move that folder with
# `LABCLIP_CACHE_DIR`, and the datasets alone with `LABCLIP_DATA_DIR`.

# %%
profiles_table()

# %% [markdown]
# The `paper` profile fetches the items below. The sizes are the ones the datasets' own pages publish, and
# "?" means no size is published. Nothing here is fetched until a chapter that needs the item runs in the
# `paper` profile.

# %%
paper_downloads_table()

# %% [markdown]
# ## How long the offline book takes
#
# `make book` executes every chapter once: two at a time, each in a fresh kernel. This chapter runs last,
# so it can read how long the others took. The figure comes from that run's own report. If you open this
# notebook on its own (in Colab, say), that report does not exist, and the cell says so.

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
# 1. Run `make book` a second time. Which chapters get faster, and why? (Look in the cache folder printed at the
#    top of this page.)
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
# 2. `ViT-B-32/openai` on `cuda`; downloads go to `~/.cache/labclip` unless `LABCLIP_CACHE_DIR` says otherwise.
# 3. `[f.filename for f in DATASETS["aro"]]` and `DATASETS["pug_spare"]` use Google Drive (through gdown);
#    Flickr30k's images need a licence form, so `fetch_dataset("flickr30k", ...)` explains where to get them.
# ```
