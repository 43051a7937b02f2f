"""The paper profile's datasets: every file, its official source and (where published) its size and checksum.

:func:`fetch_dataset` brings a dataset into a folder through :mod:`labclip_utils.io.downloads` (checksummed,
resumable, atomic; ``LABCLIP_MIRROR`` fetches from a mirror instead). Pin a checksum here with ``sha256=``: files
whose hosts publish none are recorded on first download (see :mod:`labclip_utils.io.downloads`).
"""

from __future__ import annotations

from pathlib import Path

from labclip_utils.io.downloads import GDRIVE, ManualDownloadRequired, RemoteFile, fetch

_SFR = "https://storage.googleapis.com/sfr-vision-language-research/datasets"
_SUGARCREPE = "https://raw.githubusercontent.com/RAIVNLab/sugar-crepe/main/data"
_SUGARCREPE_SUBSETS = ("add_obj", "add_att", "replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att")
#: COCO's official host: archives under ``zips/``, and every image at ``<folder>/<file>``
#: (``val2014/COCO_val2014_…jpg``, ``val2017/000000….jpg``), which is how :mod:`labclip_utils.benchmarks.subsets`
#: fetches a class's images one by one.
COCO_IMAGES = "http://images.cocodataset.org"
#: The authors' CLEVR renders, one zip per object count (``data_loading/clevr.py``, ``CLEVRLoader.FILE_IDS``).
CLEVR_FILE_IDS = {
    2: "1u2oCAsAOJeqR-09gwflEEvVQ75Fs0eD3", 3: "18iqYJzKIGRK_2Af3j38thc6G2CtNAs-_",
    4: "1KJzsGPl0XdlyomCNADFmUnRHVFztioer", 5: "1JuiHQGXor_C86t-oNDRkaPVMvhzU9IHf",
    6: "1kBIz93Tes9wCC9snr82wf0gpveKFj76k", 7: "1SVwoNrq6hw_BpfomRroSb5odwHs8yC4",
    8: "18SQEliWxiCp83XKRma1Jf3rbmeGLQLjJ", 9: "1RyqFtL969H8PbuoJpWMjHBXVHi7ZNtvD",
    10: "1ypTi1_fumo46lrZlWEKjXqNMtYoiNzKZ",
}
_SPACY_MODEL = "en_core_web_sm-3.8.0"

#: Every dataset of the paper profile, by folder name under the data directory.
DATASETS: dict[str, tuple[RemoteFile, ...]] = {
    "clevr": (RemoteFile("clevr_2obj.zip", GDRIVE, gdrive_id=CLEVR_FILE_IDS[2], extract="zip"),),
    "clevr_multi": tuple(RemoteFile(f"clevr_{n}obj.zip", GDRIVE, gdrive_id=CLEVR_FILE_IDS[n], extract="zip")
                         for n in range(3, 11)),
    "coco": (
        RemoteFile("coco_karpathy_test.json", f"{_SFR}/coco_karpathy_test.json", size="about 2 MB"),
        RemoteFile("val2014.zip", f"{COCO_IMAGES}/zips/val2014.zip", extract="zip", size="6.2 GB"),
    ),
    "coco_train": (
        RemoteFile("coco_karpathy_train.json", f"{_SFR}/coco_karpathy_train.json", size="about 80 MB"),
        RemoteFile("coco_karpathy_val.json", f"{_SFR}/coco_karpathy_val.json", size="about 2 MB"),
        RemoteFile("coco_karpathy_test.json", f"{_SFR}/coco_karpathy_test.json", size="about 2 MB"),
        RemoteFile("annotations_trainval2014.zip", f"{COCO_IMAGES}/annotations/annotations_trainval2014.zip",
                   extract="zip", size="241 MB"),
        RemoteFile("train2014.zip", f"{COCO_IMAGES}/zips/train2014.zip", extract="zip", size="13 GB"),
        RemoteFile("val2014.zip", f"{COCO_IMAGES}/zips/val2014.zip", extract="zip", size="6.2 GB"),
    ),
    "aro": (
        RemoteFile("visual_genome_relation.json", GDRIVE, gdrive_id="1kX2iCHEv0CADL8dSO1nMdW-V0NqIAiP3"),
        RemoteFile("visual_genome_attribution.json", GDRIVE, gdrive_id="13tWvOrNOLHxl3Rm9cR3geAdHx2qR3-Tw"),
        RemoteFile("vgr_vga_images.zip", GDRIVE, gdrive_id="1qaPlrwhGNMrR3a11iopZUT_GPP_LrgP9", extract="zip",
                   size="about 1 GB"),
    ),
    "sugarcrepe": (
        *(RemoteFile(f"{s}.json", f"{_SUGARCREPE}/{s}.json") for s in _SUGARCREPE_SUBSETS),
        RemoteFile("val2017.zip", f"{COCO_IMAGES}/zips/val2017.zip", extract="zip", size="0.8 GB"),
    ),
    "pug_spar": (
        RemoteFile("PUG_SPAR.tar.gz", "https://dl.fbaipublicfiles.com/large_objects/pug/PUG_SPAR.tar.gz",
                   extract="tar", size="about 16 GB"),
    ),
    "pug_spare": (
        RemoteFile("PUG_SPARE.csv", GDRIVE, gdrive_id="1lGkG51-wKRhiIb__NkftvOud9QXEc41e"),
        RemoteFile("Desert.zip", GDRIVE, gdrive_id="1JW0sApth_vaHgMrX1zhHa-L9SZVfUF1H", extract="zip"),
        RemoteFile("Island.zip", GDRIVE, gdrive_id="17GuDFHt0z8nofC2TXDOxQnb1Wp9O4Ws4", extract="zip"),
        RemoteFile("MountainRange.zip", GDRIVE, gdrive_id="18xaLyYq1hEEUuOe6KoSKfjvHsqvMitfA", extract="zip"),
        RemoteFile("Spaceship.zip", GDRIVE, gdrive_id="1mVEg_eLWkGjeuCd3iXPbpx5MFdXgqBnu", extract="zip"),
    ),
    "flickr30k": (
        RemoteFile("flickr30k_test.json", f"{_SFR}/flickr30k_test.json", size="about 1 MB"),
    ),
    # The authors' released LABCLIP matrix for ViT-B/32 (a state_dict; loaded with torch.load(weights_only=True)).
    "labclip_released": (
        RemoteFile("labclip_coco_neg_B32.pt", "https://raw.githubusercontent.com/kdariina/CLIP-not-BoW-unimodally/"
                   "main/alignment/weights/labclip_coco_neg_B32.pt",
                   sha256="833133433207f0851017ca5121d7f769c539c9ed1a6340da7e8d948fa8beaaaa", size="1 MB"),
    ),
    # What the paper's tokenisers need when they are not installed: spaCy's English model, NLTK's sentence splitter.
    "spacy": (
        RemoteFile(f"{_SPACY_MODEL}.tar.gz", "https://github.com/explosion/spacy-models/releases/download/"
                   f"{_SPACY_MODEL}/{_SPACY_MODEL}.tar.gz", extract="tar", size="13 MB"),
    ),
    "nltk": (
        RemoteFile("punkt_tab.zip", "https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/tokenizers/"
                   "punkt_tab.zip", extract="zip", size="4 MB"),
    ),
}

#: Data whose licence requires a manual step, with the instructions shown to the user.
MANUAL: dict[str, str] = {
    "flickr30k": (
        "Flickr30k images may only be obtained after accepting their terms: request them at "
        "https://shannon.cs.illinois.edu/DenotationGraph/ (or the Kaggle mirror 'hsankesara/flickr-image-dataset'), "
        "then unpack them so that the images are at {root}/flickr30k-images/<id>.jpg."
    ),
}


def fetch_dataset(name: str, root: str | Path, progress: bool = True) -> Path:
    """Download every file of dataset ``name`` into ``root`` and return ``root``.

    Raises :class:`ManualDownloadRequired` (with instructions) for data that must be requested by hand.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}")
    root = Path(root)
    for remote in DATASETS[name]:
        fetch(remote, root, progress, dataset=name)
    if name in MANUAL and not (root / "flickr30k-images").is_dir():
        raise ManualDownloadRequired(MANUAL[name].format(root=root))
    return root
