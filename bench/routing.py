"""The learning router's speed: ``python -m bench.routing``.

1. prediction: one ticket at a time through ``TextModel.rank`` (the model trained on
   the shared Chinese messages), p50/p99 over 2,000 texts, beside the plain character
   TF-IDF + LinearSVC prediction timed the same way in the same run (the limit); then
   the same for the English requests, each read once with the word-sense cache empty
   (every word looked up in WordNet, where it is installed); and routing one ticket as
   intake does (the demo city's catalogue rules, then a department model and, where
   the model decides, a service model);
2. training: a department model version as the retraining job makes it
   (``model_router.evaluate_and_train``: measured on a held-out fifth beside the
   baselines, then kept) from 100,000 tickets made from the shared messages (random
   spans of them, so no two are alike), wall time against the 2-minute goal.

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
from contact.routing import Catalogue

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "zhengwu_messages_zh.csv"
ENGLISH = ROOT.parent / "shared" / "data" / "newport_requests_en.csv"
OUT = ROOT / "var" / "bench-routing.json"
# The shared messages' categories, as the demo city's departments would resolve them.
DEPARTMENTS = {
    "城乡建设": "zjj",
    "环境保护": "hbj",
    "教育文体": "jyj",
    "交通运输": "jtj",
    "商贸旅游": "swj",
    "卫生计生": "wjw",
    "劳动和社会保障": "rsj",
}


def keyword_services(catalogue: Catalogue, rows: list[tuple[str, str]]) -> list[str | None]:
    """Each (text, department)'s service as intake's keyword rules would give it, where
    that service's department is the one that resolved it (else None: the general one)."""
    out: list[str | None] = []
    for body, code in rows:
        hits = sorted(
            catalogue.service_matches(body).items(),
            key=lambda kv: (-len(kv[1]), -sum(map(len, kv[1]))),
        )
        out.append(next((s for s, _ in hits if catalogue.services[s].department == code), None))
    return out


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


def _routing(
    texts: list[str], labels: list[str], sample: list[str], limit_p99: float
) -> dict[str, object]:
    """Routing as intake does it, over the demo city's catalogue: the rules, then the
    department model (alternatives, or the decision where the rules fall back), then
    the service model where the department model decides."""
    from collections import Counter

    from contact import model_router
    from contact.routing import RoutingRequest, RuleRouter
    from contact.seed import demo_catalogue

    catalogue = demo_catalogue().routing_catalogue()
    rows = [(t, DEPARTMENTS[lab]) for t, lab in zip(texts, labels, strict=True)]
    named = [(t, s) for (t, _), s in zip(rows, keyword_services(catalogue, rows), strict=True)]
    counts = Counter(s for _, s in named if s)
    named = [(t, s) for t, s in named if s and counts[s] >= model_router.MIN_PER_LABEL]
    loaded = model_router.Loaded(
        1,
        TextModel.train([t for t, _ in rows], [d for _, d in rows]),
        TextModel.train([t for t, _ in named], [s for _, s in named]),
    )
    router = model_router.LearningRouter(RuleRouter(), loaded)

    def route(text: str) -> object:
        return router.route(catalogue, RoutingRequest(text=text, channel="voice"))

    for text in sample[:50]:  # warm-up
        route(text)
    p50, p99 = _timed(route, sample)
    decided = [d for d in map(route, sample) if d.rule == "model"]  # type: ignore[attr-defined]
    with_service = sum(d.service != "other" for d in decided)  # type: ignore[attr-defined]
    print(
        f"routing as intake does (rules, department and service models): p50 {p50:.2f} ms, "
        f"p99 {p99:.2f} ms (goal p99 < 5 ms); ratio p99 to the plain char model "
        f"{p99 / limit_p99:.2f}; the model decided {len(decided)} of {len(sample)}, "
        f"naming a service for {with_service}"
    )
    return {
        "routing_ms": {"p50": round(p50, 3), "p99": round(p99, 3)},
        "model_decided": len(decided),
        "service_named": with_service,
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
    sample = [rng.choice(texts) for _ in range(args.samples)]
    figures: dict[str, object] = dict(_prediction(texts, labels, sample, "Chinese"))
    if args.csv == DATA:  # the demo city's departments are named for these categories
        plain = figures["plain_prediction_ms"]
        figures["routing"] = _routing(texts, labels, sample, plain["p99"])  # type: ignore[index]
    if args.english.exists():
        en_texts, en_labels = read_csv(args.english)
        once = rng.sample(en_texts, len(en_texts))
        figures["english"] = _prediction(en_texts, en_labels, once, "English", cold=True)

    trained = 0.0
    if args.train_rows:
        from contact.model_router import evaluate_and_train

        big_t, big_l = synthetic(texts, labels, args.train_rows)
        started = time.monotonic()
        _, metrics = evaluate_and_train(big_t, big_l, say=print)
        trained = time.monotonic() - started
        print(
            f"training a version on {args.train_rows:,} tickets: {trained:.1f} s "
            f"(goal < 120 s; the fit itself {metrics['train_seconds']:.1f} s on "
            f"{metrics['trained_on']:,}, held-out accuracy {metrics['accuracy']:.3f})"
        )
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
