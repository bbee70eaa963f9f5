"""The learning router's speed: ``python -m bench.routing``.

1. prediction: one ticket at a time through ``TextModel.rank`` (the model trained on
   the shared Chinese messages), p50/p99 over 2,000 texts, beside the plain character
   TF-IDF + LinearSVC prediction timed the same way in the same run (the limit); then
   the same for the English requests, each read once with the word-sense cache empty
   (every word looked up in WordNet, where it is installed);
2. training: ``TextModel.train`` on 100,000 tickets made from the shared messages
   (random spans of them, so no two are alike), wall time against the 2-minute goal.

Figures go to ``var/bench-routing.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

from contact.learning import TextModel, read_csv

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "zhengwu_messages_zh.csv"
ENGLISH = ROOT.parent / "shared" / "data" / "newport_requests_en.csv"
OUT = ROOT / "var" / "bench-routing.json"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _timed(predict: object, texts: list[str]) -> tuple[float, float]:
    took = []
    for text in texts:
        started = time.perf_counter()
        predict(text)  # type: ignore[operator]
        took.append((time.perf_counter() - started) * 1000)
    return statistics.median(took), _percentile(took, 0.99)


def synthetic(
    texts: list[str], labels: list[str], n: int, seed: int = 1
) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    out_t, out_l = [], []
    for _ in range(n):
        i = rng.randrange(len(texts))
        text = texts[i]
        start = rng.randrange(max(1, len(text) // 3))
        length = rng.randint(40, 400)
        out_t.append(text[start : start + length] or text)
        out_l.append(labels[i])
    return out_t, out_l


def _prediction(
    texts: list[str], labels: list[str], sample: list[str], name: str, cold: bool = False
) -> dict[str, dict[str, float]]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    from contact import lexicon

    model = TextModel.train(texts, labels)
    plain = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2),
        LinearSVC(C=0.5),
    ).fit(texts, labels)
    for text in sample[:50]:  # warm-up
        model.rank(text)
    words = lexicon.matching(model.features.lexicon)
    if cold and words is not None:
        words.concepts.cache_clear()
    p50, p99 = _timed(model.rank, sample)
    l50, l99 = _timed(lambda t: plain.predict([t]), sample)
    print(
        f"prediction ({name}{', word senses' if words else ''}): p50 {p50:.2f} ms, "
        f"p99 {p99:.2f} ms (goal p99 < 5 ms); plain char model p50 {l50:.2f} ms, "
        f"p99 {l99:.2f} ms; ratio p99 {p99 / l99:.2f}"
    )
    return {
        "prediction_ms": {"p50": round(p50, 3), "p99": round(p99, 3)},
        "plain_prediction_ms": {"p50": round(l50, 3), "p99": round(l99, 3)},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.routing", description=__doc__.splitlines()[0])
    p.add_argument("--csv", type=Path, default=DATA)
    p.add_argument("--english", type=Path, default=ENGLISH)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--train-rows", type=int, default=100_000)
    args = p.parse_args(argv)

    texts, labels = read_csv(args.csv)
    rng = random.Random(2)
    figures = _prediction(
        texts, labels, [rng.choice(texts) for _ in range(args.samples)], "Chinese"
    )
    if args.english.exists():
        en_texts, en_labels = read_csv(args.english)
        once = rng.sample(en_texts, len(en_texts))
        figures["english"] = _prediction(en_texts, en_labels, once, "English", cold=True)

    trained = 0.0
    if args.train_rows:
        big_t, big_l = synthetic(texts, labels, args.train_rows)
        started = time.monotonic()
        TextModel.train(big_t, big_l, say=print)
        trained = time.monotonic() - started
        print(f"training on {args.train_rows:,} tickets: {trained:.1f} s (goal < 120 s)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                **figures,
                "train_rows": args.train_rows,
                "train_s": round(trained, 1),
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
