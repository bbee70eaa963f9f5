"""What English words mean, from WordNet: the routing model's sense of "grass" and
"shrub" being plants, "possum" and "raccoon" animals, a streetlight a lamp.

A bag of words only knows the words it was trained on; a citizen who writes "a dead
raccoon on the road" where earlier reports said "possum" shares no word with them.
WordNet (Princeton's lexical database, Debian package ``wordnet-base``) gives each word its
senses, each sense its coarse class (the lexicographer file: noun.plant,
noun.artifact, verb.weather, ...) and its broader concepts (hypernyms). The model
reads, beside the words, the classes and broader concepts of each word's commonest
senses, so what it learnt from one word carries to its relatives ("maple" and "oak"
are both trees).

The database is read where it is installed and never loaded whole: the index is
searched by bisection over its sorted lines and a synset is read at its byte offset
(the synset's id), as WordNet's own library does. A word's concepts are computed
once per process. Concept ids are synset offsets, which differ between WordNet
releases, so a model records the fingerprint of the database it was trained with
and uses concepts only where the same database is found.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import logging
import mmap
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

SENSES = 3  # a word's commonest senses read, per part of speech
DEPTH = 3  # broader concepts followed upwards from each sense
SYNSET_CACHE = 100_000  # synsets kept parsed, per part of speech
PARTS = {"noun": 2, "verb": 3}  # part of speech → its tag in a concept id
CLASS_TAG = 1  # concept ids of lexicographer files (coarse classes)

# WordNet's own environment variables, then where distributions install it.
PLACES = ("/usr/share/wordnet", "/usr/local/WordNet-3.0/dict", "/usr/share/wordnet/dict")

# The suffix rules of WordNet's morphology ("morphy"), tried in order after the
# exception lists: "potholes" → "pothole", "shoveled" → "shovel", "berries" → "berry".
SUFFIXES = {
    "noun": (
        ("ses", "s"),
        ("xes", "x"),
        ("zes", "z"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("men", "man"),
        ("ies", "y"),
        ("s", ""),
    ),
    "verb": (
        ("ies", "y"),
        ("es", "e"),
        ("es", ""),
        ("ed", "e"),
        ("ed", ""),
        ("ing", "e"),
        ("ing", ""),
        ("s", ""),
    ),
}


class _Part:
    """One part of speech: its index (searched by bisection), data and exceptions."""

    def __init__(self, directory: Path, part: str) -> None:
        with (directory / f"index.{part}").open("rb") as f:
            self.index = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        with (directory / f"data.{part}").open("rb") as f:
            self.data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.starts: list[int] = []
        self.lemmas: list[bytes] = []
        at = 0
        size = len(self.index)
        while at < size:
            end = self.index.find(b"\n", at)
            end = size if end < 0 else end
            if self.index[at : at + 1] != b" ":  # licence lines start with spaces
                space = self.index.find(b" ", at, end)
                self.starts.append(at)
                self.lemmas.append(self.index[at : space if space > 0 else end])
            at = end + 1
        self.synset = functools.lru_cache(maxsize=SYNSET_CACHE)(self._synset)
        self.exceptions: dict[str, str] = {}
        exc = directory / f"{part}.exc"
        if exc.exists():
            for line in exc.read_text(encoding="latin-1").splitlines():
                words = line.split()
                if len(words) >= 2:
                    self.exceptions.setdefault(words[0], words[1])

    def senses(self, lemma: str) -> list[int]:
        """The synset offsets of ``lemma``, commonest first ([] if not a word here)."""
        key = lemma.encode("latin-1", "replace")
        i = bisect.bisect_left(self.lemmas, key)
        if i == len(self.lemmas) or self.lemmas[i] != key:
            return []
        end = self.index.find(b"\n", self.starts[i])
        fields = self.index[self.starts[i] : end].split()
        # lemma pos synset_cnt p_cnt [ptr_symbol × p_cnt] sense_cnt tagsense_cnt offsets…
        pointers = int(fields[3])
        return [int(o) for o in fields[6 + pointers :]]

    def _synset(self, offset: int) -> tuple[int, tuple[int, ...]]:
        """(lexicographer file, hypernym offsets) of the synset at ``offset``; cached as
        :meth:`synset`, since words share their broader concepts."""
        end = self.data.find(b"\n", offset)
        fields = self.data[offset:end].split(b" | ", 1)[0].split()
        # offset lex_filenum ss_type w_cnt [word lex_id × w_cnt] p_cnt [ptr × p_cnt]
        words = int(fields[3], 16)
        at = 4 + 2 * words
        count = int(fields[at])
        at += 1
        broader = []
        for _ in range(count):
            symbol, target, part = fields[at], fields[at + 1], fields[at + 2]
            at += 4
            if symbol in (b"@", b"@i") and part == fields[2][:1]:
                broader.append(int(target))
        return int(fields[1]), tuple(broader)

    def base(self, word: str) -> str | None:
        """The dictionary form of ``word`` in this part of speech, if it has one."""
        if word in self.exceptions and self.senses(self.exceptions[word]):
            return self.exceptions[word]
        if self.senses(word):
            return word
        return None


class Lexicon:
    """An installed WordNet database, read on demand."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.parts = {part: _Part(directory, part) for part in PARTS}
        digest = hashlib.sha256()
        for part in PARTS:
            data = self.parts[part].data
            digest.update(str(len(data)).encode())
            digest.update(data[: 1 << 16])
        self.fingerprint = "wordnet:" + digest.hexdigest()[:16]
        self._lock = threading.Lock()
        self.concepts = functools.lru_cache(maxsize=200_000)(self._concepts)

    def __repr__(self) -> str:
        return f"Lexicon({str(self.directory)!r}, {self.fingerprint})"

    def _base(self, part: str, word: str) -> str | None:
        found = self.parts[part].base(word)
        if found:
            return found
        for suffix, ending in SUFFIXES[part]:
            if word.endswith(suffix) and len(word) > len(suffix) + 1:
                stem = word[: -len(suffix)] + ending
                if self.parts[part].senses(stem):
                    return stem
        return None

    def _concepts(self, word: str) -> tuple[int, ...]:
        """The coarse classes and broader concepts of ``word``'s commonest senses, as
        integer ids (a class: tag 1 and its file number; a concept: its part's tag
        and synset offset, in the low 40 bits)."""
        found: list[int] = []
        with self._lock:  # mmap reads are not shared safely between threads
            for part, tag in PARTS.items():
                base = self._base(part, word)
                if base is None:
                    continue
                reader = self.parts[part]
                for offset in reader.senses(base)[:SENSES]:
                    lexfile, broader = reader.synset(offset)
                    frontier = list(broader)
                    found.append((CLASS_TAG << 32) | lexfile)
                    for _ in range(DEPTH):
                        if not frontier:
                            break
                        found.extend((tag << 32) | o for o in frontier)
                        frontier = [b for o in frontier for b in reader.synset(o)[1]]
        return tuple(found)


_found: dict[str, Lexicon | None] = {}
_found_lock = threading.Lock()


def _places() -> list[Path]:
    places = []
    if os.environ.get("WNSEARCHDIR"):
        places.append(Path(os.environ["WNSEARCHDIR"]))
    if os.environ.get("WNHOME"):
        places.append(Path(os.environ["WNHOME"]) / "dict")
    places.extend(Path(p) for p in PLACES)
    return places


def installed() -> Lexicon | None:
    """The WordNet database installed here (``WNSEARCHDIR``, ``WNHOME``/dict, then the
    usual places), opened once per process; None where there is none."""
    with _found_lock:
        if "installed" not in _found:
            lexicon = None
            for place in _places():
                if (place / "index.noun").is_file() and (place / "data.verb").is_file():
                    try:
                        lexicon = Lexicon(place)
                    except (OSError, ValueError, IndexError) as exc:
                        log.warning("WordNet at %s cannot be read: %s", place, exc)
                        continue
                    log.info("routing: English word senses from %r", lexicon)
                    break
            else:
                log.info(
                    "routing: no WordNet database found (Debian package wordnet-base); "
                    "English models read words only"
                )
            _found["installed"] = lexicon
        return _found["installed"]


def matching(fingerprint: str) -> Lexicon | None:
    """The lexicon a model was trained with, if this process has it (else None: the
    model then reads words only, and says so once)."""
    if not fingerprint:
        return None
    lexicon = _found.get(fingerprint) or installed()
    if lexicon is not None and lexicon.fingerprint == fingerprint:
        return lexicon
    with _found_lock:
        if fingerprint not in _found:
            log.warning(
                "routing: the model was trained with WordNet %s, which is not installed "
                "here; it reads words only",
                fingerprint,
            )
            _found[fingerprint] = None
    return None


def register(lexicon: Lexicon) -> None:
    """Make ``lexicon`` known by its fingerprint (a database in a chosen directory)."""
    with _found_lock:
        _found[lexicon.fingerprint] = lexicon
