"""Caption text: BLIP's ``pre_caption``, part-of-speech taggers, and the word-order perturbations of ARO and NegCLIP.

The perturbations do what ARO's ``dataset_zoo/perturbations.py`` does, draw for draw: the noun/adjective shuffles
permute with NumPy's legacy ``RandomState`` (ARO calls ``np.random.permutation``), the trigram shuffles with
Python's ``random`` (ARO calls ``random.shuffle``), and the trigram ones tokenise with ``nltk.word_tokenize``. Every
function takes those generators explicitly (a :class:`Shuffler`), so the same seeds give ARO's exact options.

In the paper profile the tagger is spaCy's ``en_core_web_sm`` (what ARO and LABCLIP use); tests and the offline
profile use :class:`LexiconTagger`, which tags from a fixed word list and so never changes between runs.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from labclip_utils.benchmarks.downloads import fetch_dataset
from labclip_utils.scenes.world import CLEVR_COLORS, SHAPES

NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})
ADJ_TAGS = frozenset({"JJ", "JJR", "JJS"})
_STRIP = re.compile(r"([.!\"()*#:;~])")


def pre_caption(caption: str, max_words: int = 50) -> str:
    """BLIP/ALBEF caption cleaning: lowercase, drop ``.!"()*#:;~``, collapse spaces, keep ``max_words`` words."""
    text = _STRIP.sub(" ", caption.lower())
    text = re.sub(r"\s{2,}", " ", text).rstrip("\n").strip(" ")
    return " ".join(text.split(" ")[:max_words])


def use_nltk_data(folder: str | Path) -> None:
    """Let NLTK find data (the ``punkt_tab`` sentence splitter) in ``folder``."""
    import nltk

    if str(folder) not in nltk.data.path:
        nltk.data.path.insert(0, str(folder))


def sentence_splitter_available() -> bool:
    """Whether NLTK's ``punkt_tab`` data is installed (``nltk.word_tokenize`` needs it)."""
    import nltk

    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
        return True
    except LookupError:
        return False


def ensure_sentence_splitter(data_root: str | Path) -> bool:
    """Make NLTK's ``punkt_tab`` available: the installed data, else the registry's ``nltk`` download (unpacked
    into ``<data_root>/nltk/tokenizers``). Returns whether it is available afterwards."""
    if sentence_splitter_available():
        return True
    folder = Path(data_root) / "nltk"
    fetch_dataset("nltk", folder / "tokenizers")
    use_nltk_data(folder)
    return sentence_splitter_available()


def word_tokenize(text: str) -> list[str]:
    """``nltk.word_tokenize``: sentences split by Punkt, then Treebank words (ARO's tokeniser). Without Punkt's data
    the text is treated as one sentence (``preserve_line=True``), which differs only inside multi-sentence text."""
    import nltk

    return nltk.word_tokenize(text, preserve_line=not sentence_splitter_available())


def tokenizer_id() -> str:
    """Names the tokenisation in effect, so stored perturbations made with another one are not reused."""
    import nltk

    return f"nltk-{nltk.__version__}-{'punkt' if sentence_splitter_available() else 'line'}"


class Tagger(Protocol):
    """Anything that splits a caption into (token, Penn Treebank tag) pairs."""

    #: Names the tagger and its version, so stored perturbations made by another tagger are not reused.
    id: str

    def __call__(self, text: str) -> list[tuple[str, str]]: ...


class LexiconTagger:
    """Tags tokens by lookup: nouns and adjectives from fixed word lists, everything else ``"X"``.

    Deterministic and instant; enough for captions built from a known vocabulary (the book's scenes).
    """

    def __init__(self, nouns: Iterable[str], adjectives: Iterable[str]) -> None:
        self.nouns = frozenset(w.lower() for w in nouns)
        self.adjectives = frozenset(w.lower() for w in adjectives)
        words = "|".join(sorted(self.nouns)) + "/" + "|".join(sorted(self.adjectives))
        self.id = "lexicon-" + hashlib.sha1(words.encode()).hexdigest()[:10]

    def __call__(self, text: str) -> list[tuple[str, str]]:
        out = []
        for token in word_tokenize(text):
            low = token.lower()
            out.append((token, "NN" if low in self.nouns else "JJ" if low in self.adjectives else "X"))
        return out


class SpacyTagger:
    """spaCy's tagger (``en_core_web_sm`` by default, as ARO and LABCLIP use). Loaded on first use: the installed
    package, else the model fetched through the download registry (dataset ``spacy``, into ``data_root``)."""

    def __init__(self, model: str = "en_core_web_sm", data_root: str | Path | None = None) -> None:
        self.model = model
        self.data_root = Path(data_root) if data_root else None
        self._nlp = None

    @property
    def id(self) -> str:
        import spacy

        return f"spacy-{spacy.__version__}-{self.model}"

    def _load(self):
        try:
            import spacy
        except ImportError as exc:
            raise RuntimeError("the paper's hard negatives need spaCy: pip install spacy") from exc
        try:
            return spacy.load(self.model)
        except OSError:
            pass
        if self.data_root is None:
            raise RuntimeError(f"spaCy's {self.model!r} is not installed: python -m spacy download {self.model} "
                               "(or pass data_root= to fetch it through the download registry)")
        folder = fetch_dataset("spacy", self.data_root / "spacy")
        found = sorted(p.parent for p in folder.glob(f"*/{self.model}/{self.model}-*/config.cfg"))
        if not found:
            raise RuntimeError(f"{folder}: the downloaded archive holds no {self.model} pipeline")
        return spacy.load(found[-1])

    def __call__(self, text: str) -> list[tuple[str, str]]:
        if self._nlp is None:
            self._nlp = self._load()
        return [(t.text, t.tag_) for t in self._nlp(text)]

    def tag_many(self, texts: Sequence[str], n_process: int = 1, batch_size: int = 1000
                 ) -> list[list[tuple[str, str]]]:
        """Tag many texts at once with spaCy's ``nlp.pipe`` (``n_process`` worker processes): the same tags as
        calling the tagger on each text, much faster."""
        if self._nlp is None:
            self._nlp = self._load()
        return [[(t.text, t.tag_) for t in doc]
                for doc in self._nlp.pipe(texts, n_process=n_process, batch_size=batch_size)]


def scene_tagger() -> LexiconTagger:
    """The lexicon tagger for the book's scenes: shapes are nouns, colours adjectives."""
    return LexiconTagger(SHAPES, CLEVR_COLORS)


@dataclass
class Shuffler:
    """The two random generators ARO's perturbations draw from: NumPy's legacy ``RandomState`` for the
    noun/adjective shuffles and Python's ``random`` for the trigram ones. ``Shuffler(seed)`` draws exactly what ARO
    draws after ``np.random.seed(seed); random.seed(seed)``."""

    seed: int = 0
    numpy: np.random.RandomState = field(init=False, repr=False)
    python: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.numpy = np.random.RandomState(self.seed)
        self.python = random.Random(self.seed)


def shuffle_nouns_and_adjectives(text: str, tagger: Tagger, rng: Shuffler) -> str:
    """Permute the nouns among the noun positions, then the adjectives among the adjective positions (NegCLIP)."""
    tagged = tagger(text)
    tokens = np.array([t for t, _ in tagged])
    nouns = [i for i, (_, tag) in enumerate(tagged) if tag in NOUN_TAGS]
    adjectives = [i for i, (_, tag) in enumerate(tagged) if tag in ADJ_TAGS]
    tokens[nouns] = rng.numpy.permutation(tokens[nouns])
    tokens[adjectives] = rng.numpy.permutation(tokens[adjectives])
    return " ".join(tokens)


def shuffle_all_but_nouns_and_adjectives(text: str, tagger: Tagger, rng: Shuffler) -> str:
    """Permute every token that is neither a noun nor an adjective among those positions."""
    tagged = tagger(text)
    tokens = np.array([t for t, _ in tagged])
    others = np.array([tag not in NOUN_TAGS | ADJ_TAGS for _, tag in tagged], dtype=bool)
    tokens[others] = rng.numpy.permutation(tokens[others])
    return " ".join(tokens)


def trigrams(tokens: Sequence[str]) -> list[list[str]]:
    """Consecutive groups of three tokens; the last group may be shorter."""
    return [list(tokens[i : i + 3]) for i in range(0, len(tokens), 3)]


def shuffle_within_trigrams(text: str, rng: Shuffler) -> str:
    """Shuffle the tokens inside each trigram, keeping the trigrams in place."""
    groups = trigrams(word_tokenize(text))
    for group in groups:
        rng.python.shuffle(group)
    return " ".join(" ".join(group) for group in groups)


def shuffle_trigrams(text: str, rng: Shuffler) -> str:
    """Shuffle the order of the trigrams, keeping each trigram intact."""
    groups = trigrams(word_tokenize(text))
    rng.python.shuffle(groups)
    return " ".join(" ".join(group) for group in groups)


def order_options(caption: str, tagger: Tagger, rng: Shuffler, max_words: int = 30) -> list[str]:
    """ARO's COCO-/Flickr30k-Order item: the cleaned caption first, then its four perturbations, each made from the
    *raw* caption and cleaned afterwards (as ``dataset_zoo/aro_datasets.py`` does)."""
    perturbed = [shuffle_nouns_and_adjectives(caption, tagger, rng),
                 shuffle_all_but_nouns_and_adjectives(caption, tagger, rng),
                 shuffle_within_trigrams(caption, rng), shuffle_trigrams(caption, rng)]
    return [pre_caption(caption, max_words), *(pre_caption(p, max_words) for p in perturbed)]


def negclip_negative(caption: str, tagger: Tagger, rng: Shuffler, max_words: int = 40) -> tuple[str, str]:
    """LABCLIP's COCO training pair: ``(positive, negative)``, the cleaned caption and its noun/adjective shuffle
    (``coco_utils.get_pos_neg_captions``). As upstream, the negative can equal the positive (one noun and one
    adjective); callers decide what to do."""
    positive = pre_caption(caption, max_words)
    return positive, shuffle_nouns_and_adjectives(positive, tagger, rng)
