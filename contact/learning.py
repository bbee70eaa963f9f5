"""Routing that learns from resolved tickets: a text classifier and its evaluation.

The model reads a contact's words the way agents do: characters and character runs
(Chinese has no spaces; typos and variants still share pieces), words and word pairs
where the language has spaces, and — weighted on their own — the first characters,
where citizens put their subject. A linear support-vector machine over TF-IDF features
is the best of what was measured here (see ``docs/decisions/0014-learning-router.md``);
its scores become confidences through a softmax whose temperature is fitted on
held-out data, so "0.9" means right about nine times in ten.

Features are computed for a whole batch at once with numpy (character n-grams packed
into 64-bit keys), and a fitted model is plain arrays: training on 100,000 tickets
takes about a minute, scoring one ticket well under a millisecond.

``contact routing evaluate --csv FILE`` measures it on fixed-seed folds beside a
majority-class and a keyword-rule baseline from the same folds.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import re
import time
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from contact.lexicon import Lexicon

HEAD_CHARS = 30  # where the subject usually is
MAX_CHARS = 600  # the rest of a long letter adds time, not accuracy
MAX_FEATURES = 400_000  # the most frequent features kept (bounds the model's size)
CJK = re.compile(r"[\u4e00-\u9fff]")
SPACE = re.compile(r"[\s\x00]+")
EN_WORD = re.compile(r"[a-z0-9]{2,}")
# Temperature is chosen on a held-out share of at most this many rows (a second fit).
TEMPERATURE_ROWS = 10_000
# A saved model: a NumPy .npz archive of its arrays and a JSON header, read back without
# pickle (so a model file or database row can hold data only, never code).
MODEL_FORMAT = "contact-routing-model/1"

# Features are 64-bit keys. A character n-gram packs its code points, 21 bits each
# (code points beyond 2^20 count as U+FFFD, so keys stay under 2^62); bit 62 marks a
# word (English words and word pairs, hashed) and bit 63 the head block (the same
# n-grams over the first HEAD_CHARS characters); both bits mark an English word's
# senses and broader concepts from WordNet (contact.lexicon). Each block is
# L2-normalised on its own.
WORD_BIT = np.uint64(1 << 62)
HEAD_BIT = np.uint64(1 << 63)
CONCEPT_BITS = WORD_BIT | HEAD_BIT
CHARS, HEAD, WORDS, CONCEPTS = 0, 1, 2, 3
BLOCKS = 4


def is_chinese(texts: Sequence[str]) -> bool:
    sample = "".join(texts[:200])
    return len(CJK.findall(sample)) > 0.2 * max(len(sample), 1)


def normalise(text: str) -> str:
    """Full-width to half-width, lower case, one space between words, at most MAX_CHARS."""
    return SPACE.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()[:MAX_CHARS]


_EN_STOP: frozenset[str] | None = None


def _english_words(text: str) -> list[str]:
    global _EN_STOP
    if _EN_STOP is None:
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        _EN_STOP = frozenset(ENGLISH_STOP_WORDS)
    words = [w for w in EN_WORD.findall(text) if w not in _EN_STOP]
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def _word_key(word: str) -> int:
    digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") >> 2) | (1 << 62)


Extras = Sequence[Sequence[str]] | None
# What each label covers in words (a department's name, its services' names and
# keywords): read as extra training documents, one per text.
Descriptions = Mapping[str, Sequence[str]] | None


def _concept_keys(lexicon: Lexicon, words: Sequence[str]) -> list[int]:
    keys: list[int] = []
    for word in words:
        if " " not in word and word.isalpha() and len(word) > 2:
            keys.extend(lexicon.concepts(word))
    return keys


def feature_keys(
    texts: Sequence[str], chinese: bool, extras: Extras = None, lexicon: Lexicon | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(document index, feature key) for every feature occurrence in ``texts``, computed
    for the whole batch at once (character n-grams without a Python loop). ``extras``
    are each text's facts beyond its words (``channel:sms``, ``district:dh``), counted
    in the word block; with a ``lexicon``, English words add their senses' classes and
    broader concepts in a block of their own."""
    norm = [normalise(t) for t in texts]
    lens = np.fromiter(map(len, norm), dtype=np.int64, count=len(norm))
    raw = np.frombuffer("\x00".join(norm).encode("utf-32-le"), dtype=np.uint32)
    codes: Any = raw.astype(np.uint64)
    codes[codes >= (1 << 20)] = 0xFFFD
    doc_of = np.repeat(np.arange(len(norm), dtype=np.int64), lens + 1)[: len(codes)]
    starts = np.concatenate(([0], np.cumsum(lens + 1)[:-1]))
    pos = np.arange(len(codes), dtype=np.int64) - starts[doc_of]
    zero = np.zeros(2, dtype=np.uint64)
    c1: Any = np.concatenate((codes[1:], zero[:1]))
    c2: Any = np.concatenate((codes[2:], zero))
    ok1 = codes != 0
    ok2 = ok1 & (c1 != 0)
    ok3 = ok2 & (c2 != 0)
    shift = np.uint64(21)
    grams = (
        (codes, ok1, 1),
        ((codes << shift) | c1, ok2, 2),
        ((codes << (shift + shift)) | (c1 << shift) | c2, ok3, 3),
    )
    docs, keys = [], []
    for key, ok, n in grams:
        docs.append(doc_of[ok])
        keys.append(key[ok])
        head = ok & (pos + n <= HEAD_CHARS)
        docs.append(doc_of[head])
        keys.append(key[head] | HEAD_BIT)
    if not chinese:
        for i, t in enumerate(norm):
            words = _english_words(t)
            docs.append(np.full(len(words), i, dtype=np.int64))
            keys.append(np.fromiter(map(_word_key, words), dtype=np.uint64, count=len(words)))
            if lexicon is not None:
                concepts = np.asarray(_concept_keys(lexicon, words), dtype=np.uint64)
                docs.append(np.full(len(concepts), i, dtype=np.int64))
                keys.append(concepts | CONCEPT_BITS)
    if extras is not None:
        for i, facts in enumerate(extras):
            docs.append(np.full(len(facts), i, dtype=np.int64))
            keys.append(
                np.fromiter(
                    (_word_key("\x01" + f) for f in facts), dtype=np.uint64, count=len(facts)
                )
            )
    return np.concatenate(docs), np.concatenate(keys)


def _block_of(keys: np.ndarray) -> np.ndarray:
    block = np.zeros(len(keys), dtype=np.int8)
    block[(keys & WORD_BIT) != 0] = WORDS
    block[(keys & HEAD_BIT) != 0] = HEAD
    block[(keys & CONCEPT_BITS) == CONCEPT_BITS] = CONCEPTS
    return block


def _weights(
    doc: np.ndarray, col: np.ndarray, count: np.ndarray, idf: np.ndarray, block: np.ndarray, n: int
) -> np.ndarray:
    """Sublinear TF × IDF, L2-normalised within each document's block."""
    value = (np.log(count) + 1.0) * idf[col]
    group = doc * BLOCKS + block[col]
    norms = np.sqrt(np.bincount(group, weights=value * value, minlength=n * BLOCKS))
    return (value / norms[group]).astype(np.float32)


@dataclass
class Features:
    """The fitted vocabulary: sorted feature keys, their IDF and block, and the
    fingerprint of the lexicon whose concepts it reads ("" for none)."""

    keys: np.ndarray  # uint64, sorted
    idf: np.ndarray  # float32
    block: np.ndarray  # int8
    lexicon: str = ""

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        chinese: bool,
        extras: Extras = None,
        lexicon: Lexicon | None = None,
    ) -> tuple[Features, Any]:
        """Learn the vocabulary from ``texts`` and return it with their matrix."""
        import scipy.sparse as sp

        n = len(texts)
        doc, key = feature_keys(texts, chinese, extras, lexicon)
        vocab, col = np.unique(key, return_inverse=True)
        pair, count = np.unique(doc * len(vocab) + col, return_counts=True)
        doc, col = pair // len(vocab), pair % len(vocab)
        df = np.bincount(col, minlength=len(vocab))
        block = _block_of(vocab)
        keep = (df >= 2) | (block != CHARS)  # a character run seen once is noise
        if keep.sum() > MAX_FEATURES:
            keep &= df >= np.sort(df[keep])[-MAX_FEATURES]
        new_col = np.cumsum(keep) - 1
        used = keep[col]
        doc, col, count = doc[used], new_col[col[used]], count[used]
        df, vocab, block = df[keep], vocab[keep], block[keep]
        idf = (np.log((1 + n) / (1 + df)) + 1.0).astype(np.float32)
        values = _weights(doc, col, count, idf, block, n)
        x = sp.csr_matrix((values, (doc, col)), shape=(n, len(vocab)), dtype=np.float32)
        return cls(vocab, idf, block, lexicon.fingerprint if lexicon else ""), x

    def transform(self, texts: Sequence[str], chinese: bool, extras: Extras = None) -> Any:
        import scipy.sparse as sp

        n = len(texts)
        doc, col, count = self._lookup(texts, chinese, extras)
        values = _weights(doc, col, count, self.idf, self.block, n)
        return sp.csr_matrix((values, (doc, col)), shape=(n, len(self.keys)), dtype=np.float32)

    def _lookup(
        self, texts: Sequence[str], chinese: bool, extras: Extras = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from contact import lexicon

        doc, key = feature_keys(texts, chinese, extras, lexicon.matching(self.lexicon))
        at = np.searchsorted(self.keys, key)
        at[at == len(self.keys)] = 0
        known = self.keys[at] == key
        width = len(self.keys) + 1
        pair, count = np.unique(doc[known] * width + at[known], return_counts=True)
        return pair // width, pair % width, count

    def one(
        self, text: str, chinese: bool, facts: Sequence[str] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        """One text's (columns, weights)."""
        doc, col, count = self._lookup([text], chinese, [facts])
        return col, _weights(doc, col, count, self.idf, self.block, 1)


def _with_descriptions(
    texts: Sequence[str], labels: Sequence[str], extras: Extras, descriptions: Descriptions
) -> tuple[list[str], list[str], Extras]:
    """The examples followed by one document for each description of a label that has
    examples."""
    texts, labels = list(texts), list(labels)
    if not descriptions:
        return texts, labels, extras
    known = set(labels)
    added = [
        (text, label)
        for label in sorted(known & set(descriptions))
        for text in dict.fromkeys(descriptions[label])
        if text.strip()
    ]
    if extras is not None:
        extras = [*extras, *([] for _ in added)]
    return texts + [t for t, _ in added], labels + [lab for _, lab in added], extras


def name_descriptions(labels: Sequence[str]) -> dict[str, list[str]]:
    """Each label's own name as its description ("Tree or Vegetation Issue", "城乡建设"),
    separators read as spaces: what a CSV of named categories says about them."""
    return {lab: [re.sub(r"[_/|>-]+", " ", lab)] for lab in set(labels)}


def _classifier() -> Any:
    from sklearn.svm import LinearSVC

    return LinearSVC(C=0.5, class_weight="balanced")


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = scores * temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of top-label confidences: the gap between how sure
    and how often right, averaged over equal-width bins weighted by their size."""
    edges = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for k in range(bins):
        inside = edges == k
        if inside.any():
            total += inside.sum() * abs(confidence[inside].mean() - correct[inside].mean())
    return total / max(len(confidence), 1)


def fit_temperature(scores: np.ndarray, truth: np.ndarray) -> float:
    """The softmax temperature whose top-label confidences are honest on held-out
    scores (least calibration error): "0.9" right about nine times in ten."""
    correct = scores.argmax(axis=1) == truth
    best, best_error = 1.0, math.inf
    for t in np.geomspace(0.25, 32, 50):
        confidence = _softmax(scores, float(t)).max(axis=1)
        error = calibration_error(confidence, correct)
        if error < best_error:
            best, best_error = float(t), error
    return best


def _decision(clf: Any, x: Any) -> np.ndarray:
    s = np.asarray(clf.decision_function(x), dtype=float)
    if s.ndim == 1:  # two classes: one column of scores
        s = np.column_stack([-s, s])
    return s


@dataclass
class TextModel:
    """A fitted classifier kept as plain arrays: the vocabulary, one coefficient matrix
    (features × labels) and the confidence temperature. Scoring one text is a sorted
    lookup of its features and one small matrix product."""

    labels: list[str]
    features: Features
    coef: np.ndarray  # (features, labels), float32
    intercept: np.ndarray  # (labels,)
    temperature: float = 1.0
    chinese: bool = True
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        labels: Sequence[str],
        seed: int = 42,
        say: Callable[[str], None] | None = None,
        extras: Extras = None,
        lexicon: Lexicon | Literal["installed"] | None = "installed",
        descriptions: Descriptions = None,
    ) -> TextModel:
        """Fit on ``texts`` and their ``labels``. English texts also read their words'
        senses from ``lexicon``: by default the WordNet installed here, if any.
        ``descriptions`` say in words what labels cover; each becomes one more training
        document of its label (labels without examples are not added), so a label
        with few examples is still known by its name and its synonyms."""
        from contact import lexicon as lexicons

        chinese = is_chinese(texts)
        real = len(texts)
        texts, labels, extras = _with_descriptions(texts, labels, extras, descriptions)
        if chinese:
            lexicon = None
        elif lexicon == "installed":
            lexicon = lexicons.installed()
        if lexicon is not None:
            lexicons.register(lexicon)
        started = time.monotonic()
        features, x = Features.fit(texts, chinese, extras, lexicon)
        if say:
            say(
                f"{len(texts):,} texts read in {time.monotonic() - started:.1f} s, "
                f"{x.shape[1]:,} features"
                + (f", word senses from {lexicon.directory}" if lexicon else "")
            )
        y = np.asarray(labels, dtype=object)
        temperature = cls._temperature(x, y, seed, real)
        clf = _classifier().fit(x, y)
        coef = np.asarray(clf.coef_, dtype=np.float32)
        intercept = np.asarray(clf.intercept_, dtype=np.float32)
        classes = [str(c) for c in clf.classes_]
        if len(classes) == 2:  # one hyperplane: score the first label as its negative
            coef = np.vstack([-coef, coef])
            intercept = np.concatenate([-intercept, intercept])
        return cls(classes, features, np.ascontiguousarray(coef.T), intercept, temperature, chinese)

    @staticmethod
    def _temperature(x: Any, y: np.ndarray, seed: int, real: int) -> float:
        """Choose the temperature on out-of-fold scores (3 folds over at most
        TEMPERATURE_ROWS rows), so that "0.9" means right about nine times in ten.
        Rows from ``real`` on are descriptions: always trained on, never scored."""
        from sklearn.model_selection import StratifiedKFold, train_test_split

        own = y[:real]
        counts = Counter(own.tolist())
        if real < 50 or min(counts.values()) < 3:
            return 1.0
        rows = np.arange(real)
        if real > TEMPERATURE_ROWS:
            rows, _ = train_test_split(
                rows, train_size=TEMPERATURE_ROWS, random_state=seed, stratify=own
            )
            if min(Counter(y[rows].tolist()).values()) < 3:
                return 1.0
        described = np.arange(real, len(y))
        labels = sorted(set(y.tolist()))
        order = {c: i for i, c in enumerate(labels)}
        scores = np.full((len(rows), len(labels)), -1e3)
        folds = StratifiedKFold(3, shuffle=True, random_state=seed)
        for a, b in folds.split(rows, y[rows]):
            fit = np.concatenate((rows[a], described))
            held = _classifier().fit(x[fit], y[fit])
            columns = [order[c] for c in held.classes_]
            scores[np.ix_(b, columns)] = _decision(held, x[rows[b]])
        return fit_temperature(scores, np.array([order[v] for v in y[rows]]))

    def scores(self, text: str, facts: Sequence[str] = ()) -> np.ndarray:
        """The raw score of every label for one text (and its facts)."""
        col, w = self.features.one(text, self.chinese, facts)
        return self.intercept + w @ self.coef[col]  # type: ignore[no-any-return]

    def predict(self, texts: Sequence[str], extras: Extras = None) -> list[str]:
        return self.predict_with_confidence(texts, extras)[0]

    def predict_with_confidence(
        self, texts: Sequence[str], extras: Extras = None
    ) -> tuple[list[str], np.ndarray]:
        """Each text's likeliest label and its confidence (as ``rank`` gives it)."""
        x = self.features.transform(texts, self.chinese, extras)
        p = _softmax(np.asarray(x @ self.coef + self.intercept), self.temperature)
        best = p.argmax(axis=1)
        return [self.labels[int(i)] for i in best], p[np.arange(len(best)), best]

    def rank(self, text: str, n: int = 3, facts: Sequence[str] = ()) -> list[tuple[str, float]]:
        """The ``n`` likeliest labels with their confidences, best first."""
        p = _softmax(self.scores(text, facts)[None, :], self.temperature)[0]
        order = np.argsort(-p)[:n]
        return [(self.labels[i], float(p[i])) for i in order]

    def to_bytes(self) -> bytes:
        """The model as a compressed .npz archive: its arrays and a JSON header."""
        header = {
            "format": MODEL_FORMAT,
            "labels": self.labels,
            "temperature": self.temperature,
            "chinese": self.chinese,
            "lexicon": self.features.lexicon,
            "metrics": self.metrics,
        }
        out = io.BytesIO()
        np.savez_compressed(
            out,
            header=np.frombuffer(json.dumps(header, ensure_ascii=False).encode(), np.uint8),
            keys=self.features.keys,
            idf=self.features.idf,
            block=self.features.block,
            coef=self.coef,
            intercept=self.intercept,
        )
        return out.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> TextModel:
        """A model saved by :meth:`to_bytes`; ValueError for anything else."""
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as saved:
                header = json.loads(saved["header"].tobytes().decode())
                arrays = {k: saved[k] for k in ("keys", "idf", "block", "coef", "intercept")}
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a saved routing model: {exc}") from None
        if not isinstance(header, dict) or header.get("format") != MODEL_FORMAT:
            raise ValueError("not a saved routing model (unknown format)")
        labels = [str(label) for label in header["labels"]]
        keys, coef = arrays["keys"], arrays["coef"]
        if keys.dtype != np.uint64 or coef.shape != (len(keys), len(labels)):
            raise ValueError("not a saved routing model (arrays do not fit together)")
        features = Features(keys, arrays["idf"], arrays["block"], str(header["lexicon"]))
        return cls(
            labels,
            features,
            coef,
            arrays["intercept"],
            float(header["temperature"]),
            bool(header["chinese"]),
            dict(header.get("metrics") or {}),
        )


# ---------------------------------------------------------------- baselines


def keyword_rules(texts: Sequence[str], labels: Sequence[str], per_label: int = 15) -> Any:
    """A keyword-rule router learnt the simple way: each label's most telling words
    (character pairs for Chinese); a text goes to the label with most hits."""
    chinese = is_chinese(texts)

    def units(text: str) -> set[str]:
        if chinese:
            return {text[i : i + 2] for i in range(len(text) - 1)}
        return set(re.findall(r"[a-z]{3,}", text.lower()))

    by_label: dict[str, Counter[str]] = {}
    overall: Counter[str] = Counter()
    for text, label in zip(texts, labels, strict=True):
        u = units(text)
        by_label.setdefault(label, Counter()).update(u)
        overall.update(u)
    sizes = Counter(labels)
    keywords: dict[str, set[str]] = {}
    for label, seen in by_label.items():
        n = sizes[label]
        scored = sorted(((seen[w] / n) * (seen[w] / overall[w]), w) for w in seen if seen[w] >= 3)
        keywords[label] = {w for _, w in scored[-per_label:]}
    majority = sizes.most_common(1)[0][0]

    def predict(batch: Sequence[str]) -> list[str]:
        out = []
        for text in batch:
            u = units(text)
            hits = {label: len(u & words) for label, words in keywords.items()}
            best = max(hits.items(), key=lambda kv: (kv[1], sizes[kv[0]]))
            out.append(best[0] if best[1] > 0 else majority)
        return out

    return predict


# ---------------------------------------------------------------- evaluation


# Confidence thresholds at which auto-dispatch is measured (CONTACT_ROUTING_AUTO_DISPATCH).
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)


@dataclass(frozen=True)
class Scores:
    accuracy: float
    macro_f1: float
    per_label: dict[str, tuple[float, float, float, int]]  # precision, recall, f1, support
    # threshold, share of tickets at or above it, accuracy among them (None if none)
    by_confidence: tuple[tuple[float, float, float | None], ...] = ()


def by_confidence(
    confidence: np.ndarray, correct: np.ndarray, thresholds: Sequence[float] = THRESHOLDS
) -> tuple[tuple[float, float, float | None], ...]:
    """What auto-dispatch at each threshold would do: the share of tickets whose top
    suggestion reaches it, and how many of those it sends to the right department."""
    out = []
    for t in thresholds:
        sure = confidence >= t
        n = int(sure.sum())
        out.append((t, n / max(len(sure), 1), float(correct[sure].mean()) if n else None))
    return tuple(out)


def score(truth: Sequence[str], predicted: Sequence[str]) -> Scores:
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    labels = sorted(set(truth))
    p, r, f, s = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    return Scores(
        float(accuracy_score(truth, predicted)),
        float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
        {lab: (float(p[i]), float(r[i]), float(f[i]), int(s[i])) for i, lab in enumerate(labels)},
    )


def cross_validate(
    texts: Sequence[str],
    labels: Sequence[str],
    folds: int = 5,
    seed: int = 42,
    say: Callable[[str], None] = print,
    descriptions: Descriptions = None,
) -> dict[str, Scores]:
    """Model and baselines on the same fixed-seed stratified folds; the model also
    learns from the labels' ``descriptions``, if given."""
    from sklearn.model_selection import StratifiedKFold

    x = np.asarray(texts, dtype=object)
    y = np.asarray(labels, dtype=object)
    predicted: dict[str, np.ndarray] = {
        name: np.empty(len(y), dtype=object) for name in ("majority", "keywords", "model")
    }
    confidence = np.zeros(len(y))
    for n, (train, test) in enumerate(
        StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y), 1
    ):
        started = time.monotonic()
        tx, ty, ex = list(x[train]), list(y[train]), list(x[test])
        predicted["majority"][test] = Counter(ty).most_common(1)[0][0]
        predicted["keywords"][test] = keyword_rules(tx, ty)(ex)
        predicted["model"][test], confidence[test] = TextModel.train(
            tx, ty, seed, descriptions=descriptions
        ).predict_with_confidence(ex)
        say(
            f"fold {n}/{folds}: {len(train)} train, {len(test)} test, "
            f"{time.monotonic() - started:.1f} s"
        )
    results = {name: score(list(y), list(p)) for name, p in predicted.items()}
    results["model"] = replace(
        results["model"], by_confidence=by_confidence(confidence, predicted["model"] == y)
    )
    return results


def read_csv(path: Path) -> tuple[list[str], list[str]]:
    """Rows with ``text`` and ``label``; blank ones are skipped."""
    texts, labels = [], []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: needs the columns text,label")
        for row in reader:
            text, label = (row.get("text") or "").strip(), (row.get("label") or "").strip()
            if text and label:
                texts.append(text)
                labels.append(label)
    if len(set(labels)) < 2:
        raise ValueError(f"{path}: needs at least two labels")
    return texts, labels


def report(results: dict[str, Scores], say: Callable[[str], None] = print) -> None:
    model = results["model"]
    say(f"{'label':<24} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}")
    for label, (p, r, f, s) in sorted(model.per_label.items(), key=lambda kv: -kv[1][3]):
        say(f"{label:<24} {p:9.3f} {r:7.3f} {f:6.3f} {s:5d}")
    for name in ("majority", "keywords"):
        b = results[name]
        say(f"baseline {name}: accuracy={b.accuracy:.3f} macro_f1={b.macro_f1:.3f}")
    report_by_confidence(model.by_confidence, say)
    say(f"accuracy={model.accuracy:.3f} macro_f1={model.macro_f1:.3f}")


def report_by_confidence(
    rows: Sequence[tuple[float, float, float | None]], say: Callable[[str], None] = print
) -> None:
    """The table of :func:`by_confidence`: what auto-dispatch would do at each threshold."""
    if not rows:
        return
    say("auto-dispatch at confidence >=   tickets dispatched   right")
    for t, share, right in rows:
        say(f"{t:>28.2f} {share:>20.1%} {'-' if right is None else f'{right:.1%}':>7}")
