"""Routing that learns from resolved tickets: a text classifier and its evaluation.

The model reads a contact's words the way agents do: characters and character runs
(Chinese has no spaces; typos and variants still share pieces), words where the
language has them (jieba for Chinese), and — weighted on their own — the first words,
where citizens put their subject. A linear support-vector machine over TF-IDF features
is the best of what was measured here (see ``docs/decisions/0014-learning-router.md``);
its scores become confidences through a softmax whose temperature is fitted on
held-out data, so "0.9" means right about nine times in ten.

``contact routing evaluate --csv FILE`` measures it on fixed-seed folds beside a
majority-class and a keyword-rule baseline from the same folds.
"""

from __future__ import annotations

import csv
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HEAD_CHARS = 30  # where the subject usually is
CJK = re.compile(r"[\u4e00-\u9fff]")


def is_chinese(texts: Sequence[str]) -> bool:
    sample = "".join(texts[:200])
    return len(CJK.findall(sample)) > 0.2 * max(len(sample), 1)


def _head(texts: Iterable[str]) -> list[str]:
    return [t[:HEAD_CHARS] for t in texts]


def _words_zh(text: str) -> list[str]:
    import jieba

    return [w for w in jieba.lcut(text) if w.strip()]


def build_pipeline(chinese: bool) -> Any:
    """The feature union and the classifier (not yet fitted)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion, make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.svm import LinearSVC

    parts: list[tuple[str, Any]] = [
        (
            "chars",
            TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2),
        ),
        (
            "head",
            make_pipeline(
                FunctionTransformer(_head),
                TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True),
            ),
        ),
    ]
    if chinese:
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        parts.append(
            (
                "words",
                TfidfVectorizer(
                    tokenizer=_words_zh,
                    token_pattern=None,
                    ngram_range=(1, 2),
                    sublinear_tf=True,
                    lowercase=False,
                ),
            )
        )
    else:
        parts.append(
            (
                "words",
                TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english"),
            )
        )
    return make_pipeline(FeatureUnion(parts), LinearSVC(C=0.5, class_weight="balanced"))


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = scores * temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def fit_temperature(scores: np.ndarray, truth: np.ndarray) -> float:
    """The softmax temperature that makes held-out confidences honest (least log loss)."""
    best, best_loss = 1.0, math.inf
    for t in np.geomspace(0.25, 32, 40):
        p = _softmax(scores, float(t))[np.arange(len(truth)), truth]
        loss = float(-np.log(np.clip(p, 1e-12, 1)).mean())
        if loss < best_loss:
            best, best_loss = float(t), loss
    return best


@dataclass
class TextModel:
    """A fitted classifier: labels, the pipeline and its confidence temperature."""

    pipeline: Any
    labels: list[str]
    temperature: float = 1.0
    chinese: bool = True
    metrics: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def train(cls, texts: Sequence[str], labels: Sequence[str], seed: int = 42) -> TextModel:
        from sklearn.model_selection import train_test_split

        chinese = is_chinese(texts)
        y = np.asarray(labels)
        counts = Counter(labels)
        temperature = 1.0
        if len(texts) >= 50 and min(counts.values()) >= 2:
            # Fit on 85%, choose the temperature on the rest, then refit on everything.
            a, b, ya, yb = train_test_split(
                list(texts), y, test_size=0.15, random_state=seed, stratify=y
            )
            held = build_pipeline(chinese).fit(a, ya)
            order = list(held.classes_)
            temperature = fit_temperature(_scores(held, b), np.array([order.index(v) for v in yb]))
        pipeline = build_pipeline(chinese).fit(list(texts), y)
        return cls(pipeline, list(pipeline.classes_), temperature, chinese)

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [str(v) for v in self.pipeline.predict(list(texts))]

    def rank(self, text: str, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` likeliest labels with their confidences, best first."""
        p = _softmax(_scores(self.pipeline, [text]), self.temperature)[0]
        order = np.argsort(-p)[:n]
        return [(self.labels[i], float(p[i])) for i in order]


def _scores(pipeline: Any, texts: Sequence[str]) -> np.ndarray:
    s = np.asarray(pipeline.decision_function(list(texts)), dtype=float)
    if s.ndim == 1:  # two classes: one column of scores
        s = np.column_stack([-s, s])
    return s


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


@dataclass(frozen=True)
class Scores:
    accuracy: float
    macro_f1: float
    per_label: dict[str, tuple[float, float, float, int]]  # precision, recall, f1, support


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
) -> dict[str, Scores]:
    """Model and baselines on the same fixed-seed stratified folds."""
    from sklearn.model_selection import StratifiedKFold

    x = np.asarray(texts, dtype=object)
    y = np.asarray(labels, dtype=object)
    predicted: dict[str, np.ndarray] = {
        name: np.empty(len(y), dtype=object) for name in ("majority", "keywords", "model")
    }
    chinese = is_chinese(list(texts))
    for n, (train, test) in enumerate(
        StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y), 1
    ):
        started = time.monotonic()
        tx, ty, ex = list(x[train]), list(y[train]), list(x[test])
        predicted["majority"][test] = Counter(ty).most_common(1)[0][0]
        predicted["keywords"][test] = keyword_rules(tx, ty)(ex)
        predicted["model"][test] = build_pipeline(chinese).fit(tx, ty).predict(ex)
        say(
            f"fold {n}/{folds}: {len(train)} train, {len(test)} test, "
            f"{time.monotonic() - started:.1f} s"
        )
    return {name: score(list(y), list(p)) for name, p in predicted.items()}


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
    say(f"accuracy={model.accuracy:.3f} macro_f1={model.macro_f1:.3f}")
