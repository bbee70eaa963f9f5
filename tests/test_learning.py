"""The learning router's model and ``contact routing evaluate/train`` on small data."""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

import pytest

from contact import learning
from contact.cli import main

TOPICS = {
    "城乡建设": ["路灯不亮", "井盖丢失", "道路坑洼", "小区违建", "楼道漏水"],
    "环境保护": ["工厂排放黑烟", "河道污染发臭", "夜间噪音扰民", "垃圾焚烧异味"],
    "教育文体": ["学校乱收费", "老师课外补课", "学位申请咨询", "体育馆开放时间"],
    "交通运输": ["公交车晚点", "出租车拒载", "红绿灯故障", "违章停车占道"],
}
FILLER = ["请相关部门尽快处理", "已经持续很久了", "希望得到回复", "影响居民生活", "谢谢"]


def corpus(n: int, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = list(TOPICS)[i % len(TOPICS)]
        words = rng.sample(TOPICS[label], 2) + rng.sample(FILLER, 2)
        rng.shuffle(words)
        rows.append(("，".join(words) + f"（第{i}号）", label))
    return rows


def write(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


def test_evaluate_prints_the_model_beside_its_baselines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "messages.csv", corpus(200))
    assert main(["routing", "evaluate", "--csv", str(path), "--folds", "4"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    last = re.fullmatch(r"accuracy=(0\.\d{3}|1\.000) macro_f1=(0\.\d{3}|1\.000)", out[-1])
    assert last, out[-1]
    majority = next(line for line in out if line.startswith("baseline majority"))
    majority_accuracy = float(majority.split("accuracy=")[1].split()[0])
    assert 0.2 <= majority_accuracy <= 0.3  # four balanced labels
    assert float(last.group(1)) > 0.9  # the words give the topic away
    assert any(line.startswith("城乡建设") for line in out)  # per-label figures
    # What auto-dispatch would do at each threshold: fewer tickets as it rises.
    at = out.index(next(line for line in out if line.startswith("auto-dispatch at")))
    table = [line.split() for line in out[at + 1 : at + 1 + len(learning.THRESHOLDS)]]
    assert [float(row[0]) for row in table] == list(learning.THRESHOLDS)
    shares = [float(row[1].rstrip("%")) for row in table]
    assert shares == sorted(shares, reverse=True) and shares[0] > 90


def test_auto_dispatch_figures_count_the_sure_tickets_and_how_many_are_right() -> None:
    import numpy as np

    confidence = np.array([0.95, 0.85, 0.6, 0.3])
    correct = np.array([True, True, False, False])
    assert learning.by_confidence(confidence, correct, (0.5, 0.9, 0.99)) == (
        (0.5, 0.75, 2 / 3),
        (0.9, 0.25, 1.0),
        (0.99, 0.0, None),
    )


def test_confident_suggestions_are_right_more_often() -> None:
    """Half the messages name two topics and either could be the answer: the model is
    unsure of those, so a higher threshold sends fewer tickets and more of them right."""
    rng = random.Random(11)
    topics = list(TOPICS)
    texts, labels = [], []
    for i in range(400):
        own = topics[i % len(topics)]
        if i % 2:
            other = topics[(i + 1 + rng.randrange(len(topics) - 1)) % len(topics)]
            words = [rng.choice(TOPICS[own]), rng.choice(TOPICS[other])]
            own = rng.choice([own, other])
        else:
            words = rng.sample(TOPICS[own], 2)
        texts.append("，".join([*words, rng.choice(FILLER)]))
        labels.append(own)
    model = learning.cross_validate(texts, labels, folds=4, say=lambda _: None)["model"]
    table = {t: (share, right) for t, share, right in model.by_confidence}
    assert table[0.5][0] > table[0.9][0] > 0.2
    assert table[0.9][1] is not None and table[0.9][1] > model.accuracy + 0.1


def test_a_bad_csv_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("body,category\nx,y\n", encoding="utf-8")
    assert main(["routing", "evaluate", "--csv", str(bad)]) == 2
    assert "text,label" in capsys.readouterr().err


def test_a_trained_model_ranks_with_honest_confidences(tmp_path: Path) -> None:
    path = write(tmp_path / "messages.csv", corpus(240))
    assert main(["routing", "train", "--csv", str(path), "--out", str(tmp_path / "m")]) == 0
    (saved,) = (tmp_path / "m").glob("routing-*.npz")
    model = learning.TextModel.from_bytes(saved.read_bytes())
    ranked = model.rank("晚上工厂排放黑烟，河道也被污染了", n=3)
    assert ranked[0][0] == "环境保护"
    assert ranked[0][1] > ranked[1][1] >= ranked[2][1]
    assert sum(c for _, c in ranked) <= 1.0 + 1e-9
    assert model.predict(["公交车经常晚点"]) == ["交通运输"]


def test_english_text_is_read_by_words() -> None:
    texts = [f"pothole on main street number {i}" for i in range(30)] + [
        f"streetlight out near the park {i}" for i in range(30)
    ]
    labels = ["Pothole"] * 30 + ["Streetlight"] * 30
    model = learning.TextModel.train(texts, labels)
    assert not model.chinese
    assert model.predict(["the streetlight by the park is out"]) == ["Streetlight"]


def test_facts_beside_the_words_are_learnt_too() -> None:
    """The same complaint goes to the district's own office: the ticket's district (a
    fact beside its words) decides between offices the text alone cannot tell apart."""
    rng = random.Random(3)
    texts, labels, extras = [], [], []
    for i in range(200):
        district = "dh" if i % 2 else "jb"
        words = rng.sample(TOPICS["城乡建设"], 2) + rng.sample(FILLER, 2)
        texts.append("，".join(words))
        labels.append(f"cgj-{district}")
        extras.append([f"district:{district}", "channel:sms"])
    model = learning.TextModel.train(texts, labels, extras=extras)
    text = "路灯不亮，井盖丢失，请相关部门尽快处理"
    assert model.rank(text, facts=["district:dh"])[0][0] == "cgj-dh"
    assert model.rank(text, facts=["district:jb"])[0][0] == "cgj-jb"
    assert model.predict([text, text], [["district:jb"], ["district:dh"]]) == ["cgj-jb", "cgj-dh"]


def test_a_label_with_few_examples_is_known_by_its_description() -> None:
    """Five tickets about fallen branches teach nothing about weeds; the label's
    description (what the catalogue says it covers) does. A description of a label
    without examples adds no label the model could suggest."""
    rng = random.Random(5)
    other = [
        "noise",
        "dog",
        "barking",
        "neighbour",
        "party",
        "parking",
        "permit",
        "question",
        "fee",
        "tax",
        "office",
        "hours",
        "water",
        "bill",
        "meter",
        "leak",
        "graffiti",
        "wall",
        "paint",
        "sign",
        "missing",
        "bench",
        "broken",
        "fence",
        "door",
    ]
    texts, labels = [], []
    for i in range(60):
        texts.append(f"pothole on {rng.choice(['main', 'high', 'elm'])} street, car damaged {i}")
        labels.append("Roads")
        texts.append(f"bin not collected on {rng.choice(['monday', 'friday'])}, trash left {i}")
        labels.append("Trash")
        texts.append(" ".join(rng.sample(other, 5)) + f" {i}")
        labels.append("Other")
    for i in range(5):
        texts.append(f"tree branch down after the storm {i}")
        labels.append("Trees")
    described = {
        "Trees": ["Trees, weeds, bushes and overgrown grass"],
        "Snow": ["Snow and ice on the pavement"],
    }
    asked = "weeds and bushes overgrown by the path"
    plain = learning.TextModel.train(texts, labels)
    taught = learning.TextModel.train(texts, labels, descriptions=described)
    assert plain.rank(asked)[0][0] == "Other"
    assert taught.rank(asked)[0][0] == "Trees"
    assert sorted(taught.labels) == ["Other", "Roads", "Trash", "Trees"]
    assert taught.predict(["pothole on main street"]) == ["Roads"]
    assert learning.name_descriptions(["Tree or Vegetation Issue", "Sign/Marking"]) == {
        "Tree or Vegetation Issue": ["Tree or Vegetation Issue"],
        "Sign/Marking": ["Sign Marking"],
    }


def test_evaluate_reads_label_names_unless_told_not_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "messages.csv", corpus(120))
    assert main(["routing", "evaluate", "--csv", str(path), "--folds", "3"]) == 0
    assert "each label's name" in capsys.readouterr().out
    args = ["routing", "evaluate", "--csv", str(path), "--folds", "3", "--no-label-names"]
    assert main(args) == 0
    assert "each label's name" not in capsys.readouterr().out


def test_a_saved_model_reads_back_the_same_and_holds_no_code(tmp_path: Path) -> None:
    import io
    import pickle

    import numpy as np

    texts, labels = zip(*corpus(240), strict=True)
    model = learning.TextModel.train(list(texts), list(labels))
    model.metrics = {"accuracy": 0.9, "note": "路灯"}
    again = learning.TextModel.from_bytes(model.to_bytes())
    probe = ["晚上工厂排放黑烟，河道也被污染了", "公交车经常晚点", "路灯不亮"]
    assert again.predict(probe) == model.predict(probe)
    assert again.rank(probe[0]) == model.rank(probe[0])
    assert (again.labels, again.metrics, again.chinese) == (model.labels, model.metrics, True)
    # Only arrays of numbers and a JSON header: nothing is unpickled on the way back.
    with np.load(io.BytesIO(model.to_bytes()), allow_pickle=False) as saved:
        assert all(saved[name].dtype != object for name in saved.files)
    for bad in (pickle.dumps(model), b"", b"PK\x03\x04 not really a zip"):
        with pytest.raises(ValueError, match="not a saved routing model"):
            learning.TextModel.from_bytes(bad)
