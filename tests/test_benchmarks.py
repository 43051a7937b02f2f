"""Benchmarks: metrics against hand-computed values, loaders on fixtures in every real format, malformed files,
the runner's encode-once guarantee, result files, and downloads against a local HTTP server."""

from __future__ import annotations

import json
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from labclip_utils.benchmarks import BENCHMARKS, aro, coco, load_benchmark, scene_tagger
from labclip_utils.benchmarks import downloads as datasets
from labclip_utils.benchmarks import perturbations as text
from labclip_utils.benchmarks.offline import OfflineSizes, write_offline_benchmarks
from labclip_utils.benchmarks.sugarcrepe import load_sugarcrepe
from labclip_utils.benchmarks.suite import headline_table, restrict_to_vocabulary, run_suite
from labclip_utils.io import downloads
from labclip_utils.labclip import LabclipMap
from labclip_utils.metrics import SUGARCREPE_FAMILIES
from labclip_utils.profile import MIRROR_ENV
from labclip_utils.store import EmbeddingStore
from labclip_utils.tasks import BenchmarkFormatError


# -- text ---------------------------------------------------------------------------------------------------
def test_pre_caption_and_perturbations_keep_the_words():
    assert text.pre_caption("A man (on a) horse!  Riding.", max_words=4) == "a man on a"
    tagger = scene_tagger()
    caption = "a red cube and a blue sphere and a green cone"
    options = text.order_options(caption, tagger, text.Shuffler(0))
    assert options[0] == caption and len(options) == 5
    for option in options:
        assert sorted(option.split()) == sorted(caption.split())
    shuffled = text.shuffle_nouns_and_adjectives(caption, tagger, text.Shuffler(3))
    words, orig = shuffled.split(), caption.split()
    assert [w for w in words if w in ("a", "and")] == [w for w in orig if w in ("a", "and")]
    assert text.trigrams(list("abcdefg")) == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
    again = text.order_options(caption, tagger, text.Shuffler(0))
    assert again == options, "seeded perturbations must repeat"


def test_negclip_negative_can_equal_the_positive():
    tagger = text.LexiconTagger(["dog"], ["brown"])
    pos, neg = text.negclip_negative("A brown dog.", tagger, text.Shuffler(0))
    assert pos == neg == "a brown dog"


# -- fixtures in every real format --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> Path:
    return write_offline_benchmarks(tmp_path_factory.mktemp("bench"), image_size=32, sizes=OfflineSizes.tiny())


def test_every_registered_benchmark_loads_from_its_real_format(fixtures):
    for name in BENCHMARKS:
        task = load_benchmark(name, fixtures, tagger=scene_tagger())
        assert len(task) > 0, name
        for ref in task.images:
            assert Path(ref.path).is_file() if hasattr(ref, "path") else ref.load().size
    sugar = load_benchmark("sugarcrepe", fixtures)
    assert set(sugar.subset) == set(SUGARCREPE_FAMILIES["replace"] + SUGARCREPE_FAMILIES["swap"]
                                     + SUGARCREPE_FAMILIES["add"])
    assert len(sugar.images) < len(sugar), "SugarCrepe analogues share images between subsets"
    coco_task = load_benchmark("coco_retrieval", fixtures)
    assert len(coco_task) == 5 * len(coco_task.images)
    vga = load_benchmark("vg_attribution", fixtures)
    assert vga.images[0].box == (0.0, 0.0, 32.0, 32.0) and vga.ties == "first"


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_malformed_files_name_the_file_and_item(fixtures, tmp_path):
    sugar = _copy(fixtures / "sugarcrepe", tmp_path / "sugarcrepe")
    data = json.loads((sugar / "swap_att.json").read_text())
    del data["0"]["negative_caption"]
    (sugar / "swap_att.json").write_text(json.dumps(data))
    missing = r"swap_att\.json \(item 0\): missing key\(s\) \['negative_caption'\]"
    with pytest.raises(BenchmarkFormatError, match=missing):
        load_sugarcrepe(sugar)
    (sugar / "swap_att.json").write_text("{not json")
    with pytest.raises(BenchmarkFormatError, match=r"swap_att\.json: not valid JSON"):
        load_sugarcrepe(sugar)
    (sugar / "swap_att.json").unlink()
    with pytest.raises(BenchmarkFormatError, match=r"swap_att\.json: file is missing"):
        load_sugarcrepe(sugar)

    aro_dir = _copy(fixtures / "aro", tmp_path / "aro")
    records = json.loads((aro_dir / "visual_genome_attribution.json").read_text())
    first_image = records[1]["image_path"]
    (aro_dir / "images" / first_image).unlink()
    gone = rf"visual_genome_attribution\.json \(item 1\): image file .*{first_image}"
    with pytest.raises(BenchmarkFormatError, match=gone):
        aro.load_vg_attribution(aro_dir)
    records[0]["attributes"] = ["red"]
    (aro_dir / "visual_genome_attribution.json").write_text(json.dumps(records))
    with pytest.raises(BenchmarkFormatError, match=r"\(item 0\): 'attributes' must be a list of two"):
        aro.load_vg_attribution(aro_dir)

    coco_dir = _copy(fixtures / "coco", tmp_path / "coco")
    records = json.loads((coco_dir / "coco_karpathy_test.json").read_text())
    records[2]["caption"] = "one string"
    (coco_dir / "coco_karpathy_test.json").write_text(json.dumps(records))
    with pytest.raises(BenchmarkFormatError, match=r"coco_karpathy_test\.json \(item 2\): 'caption' must be"):
        coco.load_coco_retrieval(coco_dir)
    with pytest.raises(FileNotFoundError, match="no SugarCrepe data"):
        load_benchmark("sugarcrepe", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("imagenet", fixtures)


def test_order_perturbations_are_generated_once_and_stored(fixtures, tmp_path, monkeypatch):
    root = _copy(fixtures / "coco", tmp_path / "coco")
    first = aro.load_order(root, "coco_order", scene_tagger(), seed=0)
    stored = list(root.glob("coco_karpathy_test.order.*.seed0.*.json"))
    assert len(stored) == 1

    def boom(*args, **kwargs):
        raise AssertionError("perturbations regenerated")

    monkeypatch.setattr(aro, "order_options", boom)
    again = aro.load_order(root, "coco_order", scene_tagger(), seed=0)
    assert again.options == first.options and (again.answer == 0).all()
    with pytest.raises(AssertionError, match="regenerated"):
        aro.load_order(root, "coco_order", scene_tagger(), seed=1)


def test_coco_training_pairs_use_negclip_shuffles(fixtures, tmp_path):
    root = _copy(fixtures / "coco", tmp_path / "coco")
    test = json.loads((root / "coco_karpathy_test.json").read_text())
    train = [{"caption": c, "image": r["image"], "image_id": str(i)} for i, r in enumerate(test) for c in r["caption"]]
    (root / "coco_karpathy_train.json").write_text(json.dumps(train))
    images, pos, neg = coco.coco_training_pairs(root, scene_tagger(), seed=0, restval="karpathy")
    assert len(images) == len(pos) == len(neg) == len(train)
    assert all(sorted(p.split()) == sorted(n.split()) for p, n in zip(pos, neg, strict=True))
    assert any(p != n for p, n in zip(pos, neg, strict=True))
    assert coco.coco_training_pairs(root, scene_tagger(), seed=0, restval="karpathy")[2] == neg


def test_suite_leaves_out_unreadable_items_and_counts_them(fixtures, tiny_encoder, tmp_path):
    class Picky:
        def tokenize(self, texts):
            if any(" the " in f" {t} " for t in texts):
                raise ValueError("unknown word 'the'")

    task, dropped = restrict_to_vocabulary(Picky(), load_benchmark("sugarcrepe", fixtures))
    assert dropped > 0 and "replace_rel" not in set(task.subset)
    none, dropped = restrict_to_vocabulary(Picky(), load_benchmark("vg_relation", fixtures))
    assert none is None and dropped > 0
    maps = {"CLIP": None, "LABCLIP": LabclipMap(tiny_encoder.embed_dim)}
    results, coverage = run_suite(tiny_encoder, maps, fixtures, names=["clevr", "sugarcrepe"], real_a="scenes",
                                  store=EmbeddingStore(root=tmp_path / "emb"), progress=False)
    assert coverage.loc["clevr", "items run"] > 0
    headline = headline_table(results)
    assert "CLEVR swap test" in headline.index and headline.loc["CLEVR swap test", "paper: CLIP"] == 0.58
    clevr = results[results.benchmark == "clevr"]
    assert set(clevr.loc[clevr.model == "LABCLIP", "A fitted on"]) == {"clevr training split"}, "one A per dataset"
    assert "accuracy (cosine)" in set(clevr.metric), "the paper's raw-dot baseline, and the cosine one"
    sugar = results[results.benchmark == "sugarcrepe"]
    assert set(sugar.loc[sugar.model == "LABCLIP", "A fitted on"]) == {"scenes"}
    assert pd.isna(headline.loc["SugarCrepe swap (unweighted)", "paper: LABCLIP"]), "A not from COCO: no paper value"


# -- downloads ---------------------------------------------------------------------------------------------
class _RangeHandler(SimpleHTTPRequestHandler):
    """A static server that honours ``Range: bytes=N-`` (enough to test resuming)."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_RangeHandler, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_verifies_records_and_resumes(server, tmp_path, monkeypatch):
    served, url = server
    payload = bytes(range(256)) * 4000
    (served / "data.bin").write_bytes(payload)
    root = tmp_path / "data"
    remote = downloads.RemoteFile("data.bin", f"{url}/data.bin")
    root.mkdir()
    (root / "data.bin.part").write_bytes(payload[:1000])  # an interrupted earlier download
    path = downloads.fetch(remote, root, progress=False)
    assert path.read_bytes() == payload
    assert json.loads((root / "checksums.json").read_text())["data.bin"] == downloads.sha256_of(path)
    hashed = []
    real_sha = downloads.sha256_of
    monkeypatch.setattr(downloads, "sha256_of", lambda p, *a: hashed.append(p) or real_sha(p, *a))
    assert downloads.fetch(remote, root, progress=False) == path  # verified against the record, no download
    assert hashed == [], "an unchanged, already verified file is not hashed again"

    path.write_bytes(b"tampered")
    with pytest.raises(downloads.ChecksumError, match="data.bin: sha256"):
        downloads.fetch(remote, root, progress=False)

    pinned = downloads.RemoteFile("other.bin", f"{url}/data.bin", sha256="0" * 64)
    with pytest.raises(downloads.ChecksumError):
        downloads.fetch(pinned, root, progress=False)
    assert not (root / "other.bin").exists() and not (root / "other.bin.part").exists(), "nothing half-written"


def test_archives_are_unpacked_atomically_and_safely(server, tmp_path):
    served, url = server
    with zipfile.ZipFile(served / "images.zip", "w") as z:
        z.writestr("val2017/000000000001.jpg", b"jpeg bytes")
    root = tmp_path / "data"
    downloads.fetch(downloads.RemoteFile("images.zip", f"{url}/images.zip", extract="zip"), root, progress=False)
    assert (root / "val2017" / "000000000001.jpg").read_bytes() == b"jpeg bytes"
    assert not list(root.glob(".extract-*"))
    with zipfile.ZipFile(served / "evil.zip", "w") as z:
        z.writestr("../escape.txt", b"x")
    with pytest.raises(downloads.DownloadError, match="refusing to unpack"):
        downloads.fetch(downloads.RemoteFile("evil.zip", f"{url}/evil.zip", extract="zip"), root, progress=False)
    assert not (tmp_path / "escape.txt").exists()


def test_a_mirror_folder_serves_the_clevr_renders_and_the_suite_reports_manual_data(tmp_path, monkeypatch,
                                                                                    tiny_encoder):
    from labclip_utils.scenes import make_scenes, save_scenes

    renders = save_scenes(make_scenes(80, "clevr", 2, seed=2, image_size=32), tmp_path / "renders")
    mirror = tmp_path / "mirror" / "clevr"
    mirror.mkdir(parents=True)
    with zipfile.ZipFile(mirror / "clevr_2obj.zip", "w") as z:  # the authors' layout at the top of the zip
        for path in renders.rglob("*"):
            if path.is_file() and path.name != "labclip.json":
                z.write(path, path.relative_to(renders).as_posix())
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "mirror"))
    assert downloads.source("clevr", datasets.DATASETS["clevr"][0]) == f"{tmp_path}/mirror/clevr/clevr_2obj.zip"
    task = load_benchmark("clevr", tmp_path / "data", download=True, split_kind="paper")
    assert len(task) > 0 and (tmp_path / "data" / "clevr" / "output_2obj.csv").is_file()
    assert task.score == "raw_text_dot" and task.ties == "correct"

    import labclip_utils.benchmarks.suite as suite

    def manual(name, root, progress=True):
        if name == "flickr30k":
            raise downloads.ManualDownloadRequired("request the images by hand")
        return root

    monkeypatch.setattr(suite, "fetch_dataset", manual)
    results, coverage = run_suite(tiny_encoder, {"CLIP": None}, tmp_path / "data", names=["clevr", "flickr30k_order"],
                                  download=True, store=EmbeddingStore(root=tmp_path / "emb"), progress=False)
    assert coverage.loc["flickr30k_order", "items run"] == 0
    assert "by hand" in coverage.loc["flickr30k_order", "note"]
    assert set(results.benchmark) == {"clevr"}


def test_manual_datasets_explain_themselves(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "fetch", lambda remote, root, progress=True, dataset="": root / remote.filename)
    with pytest.raises(downloads.ManualDownloadRequired, match="flickr30k-images"):
        datasets.fetch_dataset("flickr30k", tmp_path)
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.fetch_dataset("imagenet", tmp_path)
    for name, files in datasets.DATASETS.items():
        for f in files:
            assert f.url.startswith("https://") or f.url.startswith("http://images.cocodataset.org") or (
                f.url == downloads.GDRIVE and f.gdrive_id), f"{name}/{f.filename}"


# -- the playground and published values ------------------------------------------------------------------------
def test_playground_scores_and_refuses_empty_captions(tiny_encoder):
    from labclip_utils.book.playground import Playground
    from labclip_utils.scenes import make_scenes

    scenes = make_scenes(8, "clevr", 2, seed=3, image_size=32)
    pg = Playground(tiny_encoder, LabclipMap(tiny_encoder.embed_dim), scenes)
    a, b = pg.default_captions(0)
    assert a == scenes.captions[0] and b == scenes.negatives[0]
    table = pg.scores(0, a, "a green cone")
    assert list(table.index) == ["CLIP", "LABCLIP"]
    margin = table.loc["CLIP", "caption A"] - table.loc["CLIP", "caption B"]
    assert table.loc["CLIP", "margin (A − B)"] == pytest.approx(margin)
    assert table.loc["CLIP", "prefers"] == ("A" if margin > 0 else "B" if margin < 0 else "tie")
    with pytest.raises(ValueError, match="two non-empty captions"):
        pg.scores(0, a, "  ")
    assert pg.widget(0).children[1].value == a


def test_the_web_playground_data_holds_the_text_tower_its_word_ids_and_pythons_scores(tiny_encoder, tmp_path,
                                                                                     monkeypatch):
    """What the in-browser playground runs on (the browser test checks the page's scores against ``checks``):
    every tower weight at full precision, word ids that rebuild the tokenizer's ids, A, and Python's scores."""
    import base64
    import json

    import numpy as np
    import torch

    from labclip_utils.book.playground import Playground
    from labclip_utils.book.publish import publish_static
    from labclip_utils.models import load_miniature
    from labclip_utils.models.miniature import MiniatureConfig
    from labclip_utils.scenes import make_scenes

    encoder = load_miniature(None, config=MiniatureConfig.tiny(), progress=False)
    scenes = make_scenes(6, "clevr", 2, seed=3, image_size=64)
    labclip_map = LabclipMap(encoder.embed_dim)
    with torch.no_grad():
        labclip_map.linear.weight.add_(0.1 * torch.randn(encoder.embed_dim, encoder.embed_dim))
    pg = Playground(encoder, labclip_map, scenes)
    data = pg.web_data(n_scenes=4, checks=[(1, "a red cube", "cyan sphere and a gray cone")])
    weights = np.frombuffer(base64.b64decode(data["weights"]), dtype="<f4")

    def tensor(name):
        spec = data["tensors"][name]
        return weights[spec["offset"]:spec["offset"] + int(np.prod(spec["shape"]))].reshape(spec["shape"])

    tower = encoder.model.text_tower.state_dict()
    assert {f"tower.{k}" for k in tower if k != "attn_mask"} <= set(data["tensors"])
    for name, value in tower.items():
        if name != "attn_mask":
            assert np.array_equal(tensor(f"tower.{name}"), value.numpy()), name
    assert np.array_equal(tensor("A"), labclip_map.A.detach().numpy())
    images = encoder.encode_images([scenes.image(i) for i in range(4)], progress=False).numpy()
    assert np.array_equal(tensor("images"), images) and len(data["scenes"]) == 4
    caption = "a cyan cylinder and a gray cone"  # "cyan" is two of CLIP's tokens
    ids = [data["start"], *[i for w in caption.split() for i in data["words"][w]], data["end"]]
    assert ids == encoder.tokenize([caption])[0, :len(ids)].tolist() and len(data["words"]["cyan"]) == 2
    check = data["checks"][0]
    table = pg.scores(1, "a red cube", "cyan sphere and a gray cone")
    assert check["LABCLIP B"] == table.loc["LABCLIP", "caption B"] and check["CLIP A"] == table.loc["CLIP", "caption A"]
    with pytest.raises(ValueError, match="miniature only"):
        Playground(tiny_encoder, labclip_map, scenes).web_data()
    # published beside the site's scripts only while the book builds, atomically
    assert publish_static("playground-data.js", "x") is None
    monkeypatch.setenv("LABCLIP_STATIC_DIR", str(tmp_path))
    text = pg.web_script(n_scenes=2)
    assert publish_static("playground-data.js", text) == tmp_path / "playground-data.js"
    assert json.loads(text.removeprefix("window.LABCLIP_PLAYGROUND = ").rstrip().rstrip(";"))["scenes"][1]["caption"]
    assert [f.name for f in tmp_path.iterdir()] == ["playground-data.js"]


def test_publish_glues_values_and_the_papers(monkeypatch):
    from labclip_utils.book import publish as pub

    glued = {}
    monkeypatch.setattr(pub, "_glue", lambda key, value: glued.__setitem__(key, value))
    paper = dict(setting="CLEVR", metric="swap accuracy (test split)", model="CLIP")
    assert pub.publish("swap_clip", 0.5512, paper=paper) == 0.5512
    assert glued == {"swap_clip": 0.5512, "swap_clip_paper": 0.58}
    with pytest.raises(KeyError, match="0 paper numbers"):
        pub.publish("x", 1.0, paper=dict(setting="CLEVR", metric="no such metric", model="CLIP"))
    with pytest.raises(ValueError, match="NaN"):
        pub.publish("y", float("nan"))
    assert pub.slug("ARO VG-Attribution (macro)") == "aro_vg_attribution_macro"
    assert pub.slug("COCO text→image R@1") == "coco_text_image_r_1"


def test_publish_figure_writes_only_for_the_book(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from labclip_utils.book import publish as pub

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    monkeypatch.delenv(pub.FIGURES_ENV, raising=False)
    assert pub.publish_figure("landing", fig) is None
    monkeypatch.setenv(pub.FIGURES_ENV, str(tmp_path / "figures"))
    path = pub.publish_figure("landing", fig)
    assert path == tmp_path / "figures" / "landing.png" and path.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in path.parent.iterdir()] == ["landing.png"]
    plt.close(fig)
