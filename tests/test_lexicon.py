"""English word senses for the routing model (contact.lexicon): a small database in
WordNet's own file format, and the installed one where the machine has it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from contact import learning
from contact import lexicon as lexicons

# (id, part, lexicographer file, words, broader ids) — a tiny WordNet:
# grass and hedge are plants; lawn is a kind of grass; pothole and asphalt are road things.
SYNSETS = [
    ("plant", "n", 20, ["plant", "flora"], []),
    ("herb", "n", 20, ["herb"], ["plant"]),
    ("grass", "n", 20, ["grass"], ["herb"]),
    ("lawn", "n", 20, ["lawn"], ["grass"]),
    ("shrub", "n", 20, ["shrub", "bush"], ["plant"]),
    ("hedge", "n", 20, ["hedge", "hedgerow"], ["shrub"]),
    ("goose", "n", 5, ["goose"], []),
    ("road", "n", 6, ["road"], []),
    ("surface", "n", 6, ["surface"], ["road"]),
    ("asphalt", "n", 6, ["asphalt"], ["surface"]),
    ("pothole", "n", 6, ["pothole"], ["road"]),
    ("mow", "v", 35, ["mow", "cut_down"], []),
]


def write_wordnet(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for part in ("noun", "verb"):
        tag = part[0]
        mine = [s for s in SYNSETS if s[1] == tag]
        # Offsets are byte positions in the data file; the licence header comes first.
        header = "  1 A database in WordNet's format, for tests.  \n"
        lines: list[str] = []
        offsets = {name: 0 for name, *_ in mine}
        # Offsets are written 8 digits wide, so the second pass keeps the first's
        # line lengths and fills in the pointers to synsets further down.
        for _ in range(2):
            lines, at = [], len(header)
            for name, _, lexfile, words, broader in mine:
                ws = " ".join(f"{w} 0" for w in words)
                ptrs = " ".join(f"@ {offsets[b]:08d} {tag} 0000" for b in broader)
                line = (
                    f"{at:08d} {lexfile:02d} {tag} {len(words):02x} {ws} "
                    f"{len(broader):03d} {ptrs} | a gloss for {name}  \n"
                ).replace("  ", " ")
                offsets[name] = at
                lines.append(line)
                at += len(line.encode())
        (directory / f"data.{part}").write_text(header + "".join(lines), encoding="latin-1")
        index = sorted(
            f"{w} {tag} 1 1 @ 1 0 {offsets[name]:08d}  \n"
            for name, _, _, words, _ in mine
            for w in words
        )
        (directory / f"index.{part}").write_text(header + "".join(index), encoding="latin-1")
    (directory / "noun.exc").write_text("geese goose\n", encoding="latin-1")
    (directory / "verb.exc").write_text("mown mow\n", encoding="latin-1")
    return directory


@pytest.fixture
def wordnet(tmp_path: Path) -> lexicons.Lexicon:
    return lexicons.Lexicon(write_wordnet(tmp_path / "wordnet"))


def ids(lexicon: lexicons.Lexicon, *names: str) -> set[int]:
    """The concept ids of the named synsets of the test database."""
    found = set()
    for name in names:
        part = next(s[1] for s in SYNSETS if s[0] == name)
        reader = lexicon.parts["noun" if part == "n" else "verb"]
        (offset,) = reader.senses(name.replace(" ", "_"))
        found.add((lexicons.PARTS["noun" if part == "n" else "verb"] << 32) | offset)
    return found


def test_a_word_reads_its_class_and_broader_concepts(wordnet: lexicons.Lexicon) -> None:
    concepts = set(wordnet.concepts("lawn"))
    assert (lexicons.CLASS_TAG << 32 | 20) in concepts  # noun.plant
    assert ids(wordnet, "grass", "herb", "plant") <= concepts
    # Relatives meet in what they share, and only there.
    assert set(wordnet.concepts("hedge")) & concepts == {
        lexicons.CLASS_TAG << 32 | 20,
        *ids(wordnet, "plant"),
    }
    assert not set(wordnet.concepts("pothole")) & concepts


def test_inflected_words_find_their_dictionary_form(wordnet: lexicons.Lexicon) -> None:
    assert wordnet.concepts("lawns") == wordnet.concepts("lawn")
    assert wordnet.concepts("potholes") == wordnet.concepts("pothole")
    assert wordnet.concepts("geese") == wordnet.concepts("goose") != ()
    assert wordnet.concepts("mowing") == wordnet.concepts("mow") != ()
    assert wordnet.concepts("mown") == wordnet.concepts("mow")
    assert wordnet.concepts("xylophonic") == ()
    assert wordnet.concepts("s") == ()


def test_broader_concepts_stop_after_a_few_steps(tmp_path: Path) -> None:
    chain = [("c0", "n", 3, ["c0"], [])] + [
        (f"c{i}", "n", 3, [f"c{i}"], [f"c{i - 1}"]) for i in range(1, 8)
    ]
    original = list(SYNSETS)
    SYNSETS[:] = chain
    try:
        lexicon = lexicons.Lexicon(write_wordnet(tmp_path / "chain"))
    finally:
        SYNSETS[:] = original
    reader = lexicon.parts["noun"]
    found = set(lexicon.concepts("c7"))
    steps = {f"c{i}": (2 << 32) | reader.senses(f"c{i}")[0] for i in range(8)}
    assert {steps["c6"], steps["c5"], steps["c4"]} <= found
    assert steps["c3"] not in found and steps["c7"] not in found


VEGETATION = [
    "grass growing over the sidewalk on {}",
    "overgrown hedge blocks the view at {}",
    "please trim the hedge near {}",
    "tall grass in the median on {}",
]
ROADS = [
    "deep pothole in the road on {}",
    "asphalt crumbling at {}",
    "pothole damaged my tire on {}",
    "broken asphalt near {}",
]
STREETS = ["Spring St", "Bellevue Ave", "Thames St", "Broadway", "Memorial Blvd", "Ocean Dr"]


def english_corpus() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for i in range(60):
        street = STREETS[i % len(STREETS)]
        texts.append(VEGETATION[i % 4].format(street))
        labels.append("Tree or Vegetation")
        texts.append(ROADS[i % 4].format(street))
        labels.append("Roadway")
    return texts, labels


def test_the_model_carries_what_it_learnt_to_related_words(wordnet: lexicons.Lexicon) -> None:
    """No report used "lawn" or "shrub": with word senses the model still knows they
    are plants; reading words only, it cannot tell."""
    texts, labels = english_corpus()
    senses = learning.TextModel.train(texts, labels, lexicon=wordnet)
    words = learning.TextModel.train(texts, labels, lexicon=None)
    assert senses.features.lexicon == wordnet.fingerprint
    assert words.features.lexicon == ""
    text = "a shrub on Thames St"
    best, confidence = senses.rank(text, n=1)[0]
    assert best == "Tree or Vegetation" and confidence > 0.9
    assert dict(words.rank(text, n=2))["Tree or Vegetation"] < 0.5
    assert senses.predict(["the lawn needs mowing", "asphalt is broken"]) == [
        "Tree or Vegetation",
        "Roadway",
    ]


def test_chinese_models_read_no_word_senses(wordnet: lexicons.Lexicon) -> None:
    texts = ["路灯不亮请修理", "垃圾没有清运"] * 30
    labels = ["城乡建设", "环境保护"] * 30
    model = learning.TextModel.train(texts, labels, lexicon=wordnet)
    assert model.chinese and model.features.lexicon == ""


def test_a_model_whose_lexicon_is_missing_reads_words_only(
    wordnet: lexicons.Lexicon, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    texts, labels = english_corpus()
    model = learning.TextModel.train(texts, labels, lexicon=wordnet)
    blob = model.to_bytes()
    monkeypatch.setattr(lexicons, "_found", {"installed": None})
    moved = learning.TextModel.from_bytes(blob)
    with caplog.at_level(logging.WARNING, logger="contact.lexicon"):
        assert moved.predict(["deep pothole on Spring St"]) == ["Roadway"]
        moved.rank("tall grass on Broadway")
    assert sum("not installed here" in r.getMessage() for r in caplog.records) == 1
    # Words alone still route what the words say.
    assert moved.rank("tall grass on Broadway", n=1)[0][0] == "Tree or Vegetation"


def test_the_installed_database_is_found_by_wordnets_own_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    place = write_wordnet(tmp_path / "wn")
    monkeypatch.setattr(lexicons, "_found", {})
    monkeypatch.setenv("WNSEARCHDIR", str(place))
    found = lexicons.installed()
    assert found is not None and found.directory == place
    assert lexicons.matching(found.fingerprint) is found
    assert lexicons.matching("wordnet:0000000000000000") is None

    monkeypatch.setattr(lexicons, "_found", {})
    monkeypatch.delenv("WNSEARCHDIR")
    monkeypatch.setenv("WNHOME", str(tmp_path))
    monkeypatch.setattr(lexicons, "PLACES", ())
    assert lexicons.installed() is None  # WNHOME/dict does not exist
    (tmp_path / "wn").rename(tmp_path / "dict")
    monkeypatch.setattr(lexicons, "_found", {})
    found = lexicons.installed()
    assert found is not None and found.directory == tmp_path / "dict"


@pytest.mark.skipif(lexicons.installed() is None, reason="no WordNet installed")
def test_the_installed_wordnet_knows_a_citys_words() -> None:
    wordnet = lexicons.installed()
    assert wordnet is not None
    animal = lexicons.CLASS_TAG << 32 | 5  # noun.animal
    assert animal in wordnet.concepts("possum") and animal in wordnet.concepts("raccoons")
    # Oaks and maples are both trees.
    assert set(wordnet.concepts("oak")) & set(wordnet.concepts("maples")) - {
        lexicons.CLASS_TAG << 32 | 20
    }
