"""Caption text: BLIP's ``pre_caption``, part-of-speech taggers, and the word-order perturbations of ARO and NegCLIP.

The perturbations follow ARO's ``dataset_zoo/perturbations.py`` in what they do, with two changes for
reproducibility: every random choice comes from an explicit ``numpy`` generator, and the tagger is pluggable.
In the paper profile the tagger is spaCy's ``en_core_web_sm`` (what ARO and LABCLIP use); tests and the offline
profile use :class:`LexiconTagger`, which tags from a fixed word list and so never changes between runs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np

NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})
ADJ_TAGS = frozenset({"JJ", "JJR", "JJS"})
_STRIP = re.compile(r"([.!\"()*#:;~])")
_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")

def pre_caption(caption: str, max_words: int = 50) -> str:
    """BLIP/ALBEF caption cleaning: lowercase, drop ``.!"()*#:;~``, collapse spaces, keep ``max_words`` words."""
    text = _STRIP.sub(" ", caption.lower())
    text = re.sub(r"\s{2,}", " ", text).rstrip("\n").strip(" ")
    return " ".join(text.split(" ")[:max_words])

def word_tokenize(text: str) -> list[str]:
    """Words and punctuation marks as separate tokens (a dependency-free stand-in for ``nltk.word_tokenize``)."""
    return _TOKEN.findall(text)

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
    """spaCy's tagger (``en_core_web_sm`` by default, as ARO and LABCLIP use). Loaded on first use."""

    def __init__(self, model: str = "en_core_web_sm") -> None:
        self.model = model
        self._nlp = None

    @property
    def id(self) -> str:
        import spacy

        return f"spacy-{spacy.__version__}-{self.model}"

    def __call__(self, text: str) -> list[tuple[str, str]]:
        if self._nlp is None:
            try:
                import spacy

                self._nlp = spacy.load(self.model)
            except (ImportError, OSError) as exc:
                raise RuntimeError(
                    f"the paper's hard negatives need spaCy and its {self.model!r} model: "
                    f"pip install spacy && python -m spacy download {self.model}"
                ) from exc
        return [(t.text, t.tag_) for t in self._nlp(text)]

def scene_tagger() -> LexiconTagger:
    """The lexicon tagger for the book's scenes: shapes are nouns, colours adjectives."""
    from labclip_utils.scenes.world import CLEVR_COLORS, SHAPES

    return LexiconTagger(SHAPES, CLEVR_COLORS)

def _permute_positions(tokens: list[str], positions: list[int], rng: np.random.Generator) -> list[str]:
    out = list(tokens)
    for target, source in zip(positions, rng.permutation(positions), strict=True):
        out[target] = tokens[int(source)]
    return out

def shuffle_nouns_and_adjectives(text: str, tagger: Tagger, rng: np.random.Generator) -> str:
    """Permute the nouns among the noun positions and the adjectives among the adjective positions (NegCLIP)."""
    tagged = tagger(text)
    tokens = [t for t, _ in tagged]
    tokens = _permute_positions(tokens, [i for i, (_, tag) in enumerate(tagged) if tag in NOUN_TAGS], rng)
    tokens = _permute_positions(tokens, [i for i, (_, tag) in enumerate(tagged) if tag in ADJ_TAGS], rng)
    return " ".join(tokens)

def shuffle_all_but_nouns_and_adjectives(text: str, tagger: Tagger, rng: np.random.Generator) -> str:
    """Permute every token that is neither a noun nor an adjective among those positions."""
    tagged = tagger(text)
    others = [i for i, (_, tag) in enumerate(tagged) if tag not in NOUN_TAGS | ADJ_TAGS]
    return " ".join(_permute_positions([t for t, _ in tagged], others, rng))

def trigrams(tokens: Sequence[str]) -> list[list[str]]:
    """Consecutive groups of three tokens; the last group may be shorter."""
    return [list(tokens[i : i + 3]) for i in range(0, len(tokens), 3)]

def shuffle_within_trigrams(text: str, rng: np.random.Generator) -> str:
    """Shuffle the tokens inside each trigram, keeping the trigrams in place."""
    return " ".join(" ".join(g[int(i)] for i in rng.permutation(len(g))) for g in trigrams(word_tokenize(text)))

def shuffle_trigrams(text: str, rng: np.random.Generator) -> str:
    """Shuffle the order of the trigrams, keeping each trigram intact."""
    groups = trigrams(word_tokenize(text))
    return " ".join(" ".join(groups[int(i)]) for i in rng.permutation(len(groups)))

def order_options(caption: str, tagger: Tagger, rng: np.random.Generator, max_words: int = 30) -> list[str]:
    """ARO's COCO-/Flickr30k-Order item: the cleaned caption first, then its four perturbations."""
    clean = pre_caption(caption, max_words)
    perturbed = [shuffle_nouns_and_adjectives(clean, tagger, rng),
                 shuffle_all_but_nouns_and_adjectives(clean, tagger, rng),
                 shuffle_within_trigrams(clean, rng), shuffle_trigrams(clean, rng)]
    return [clean, *(pre_caption(p, max_words) for p in perturbed)]

def negclip_negative(caption: str, tagger: Tagger, rng: np.random.Generator, max_words: int = 40) -> tuple[str, str]:
    """LABCLIP's COCO training pair: ``(positive, negative)`` with nouns and adjectives shuffled (NegCLIP).

    As upstream, the negative can equal the positive (one noun and one adjective); callers decide what to do.
    """
    positive = pre_caption(caption, max_words)
    return positive, shuffle_nouns_and_adjectives(positive, tagger, rng)
