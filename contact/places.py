"""Places: where a citizen's address is.

- :class:`Gazetteer`: address text → district and street office, from a catalogue
  snapshot's words (district names and keywords; street offices' keywords, which are
  their subdistrict's name, roads and landmarks). Text and words are compared after
  :func:`normalise` (full-width → half-width, lower case, spaces). A district's suffix
  is optional (东湖区 / 东湖, Donghu District / Donghu); a subdistrict's, town's or
  road's when three or more characters remain (工人村路 / 工人村), and a subdistrict
  takes any form of its suffix (解放街道 / 解放街道办 / 解放街). The text
  is read left to right taking the longest word at each place, so 东湖公园 is a park,
  not the district 东湖 followed by 公园; the longest word then decides.
- :class:`DistrictBoundaries`: a point → district, from a GeoJSON FeatureCollection
  (setting ``CONTACT_DISTRICTS_GEOJSON``). Each feature is a Polygon or MultiPolygon
  (holes respected) whose property ``code`` names a district of the catalogue. Where
  features share a border, the earlier one in the file wins.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contact.routing import Catalogue

CODE_PROPERTY = "code"  # the feature property naming the district

# Suffixes a place is often written without (longest first). A district's name keeps
# two characters (东湖区 → 东湖); a subdistrict's, town's or road's must keep three, since
# 解放 / 人民 / 北京 alone name too many things (人民医院, 解放军). A subdistrict is also
# written with the other forms of its suffix (解放街道 → 解放街道办, 解放街).
DISTRICT_SUFFIXES = ("新区", "区", "县", "市")
DISTRICT_SUFFIXES_EN = (" district", " county")
SUBDISTRICT_SUFFIXES = ("街道办事处", "街道办", "街道")
TOWN_SUFFIXES = (*SUBDISTRICT_SUFFIXES, "镇", "乡")
ROAD_SUFFIXES = ("大道", "大街", "路", "街")
STEM_MIN = 3


# ------------------------------------------------------------------ text


def _cjk(ch: str) -> bool:
    return ch >= "\u2e80"


_SPACES = re.compile(r"\s+")
# Full-width ASCII forms (Ａ１，) and the ideographic space → ASCII. (NFKC would do it
# too, at ten times the cost on Chinese text, and would change more than widths.)
_FULL_WIDTH = re.compile("[\uff01-\uff5e\u3000]+")
_HALF_WIDTH = {0xFF01 + i: 0x21 + i for i in range(0x5E)} | {0x3000: 0x20}


def _half(m: re.Match[str]) -> str:
    return m.group().translate(_HALF_WIDTH)


def normalise(text: str) -> str:
    """Full-width forms become ASCII, letters lower case, runs of white space one
    space, and no space next to a Chinese character ("东湖 区" → "东湖区")."""
    text = _SPACES.sub(" ", _FULL_WIDTH.sub(_half, text).lower()).strip()
    if " " not in text:
        return text
    parts = text.split(" ")
    out = [parts[0]]
    for part in parts[1:]:
        if not part:
            continue
        if _cjk(out[-1][-1:]) or _cjk(part[0]):
            out[-1] += part
        else:
            out.append(part)
    return " ".join(out)


def _variants(word: str) -> Iterator[str]:
    """Other ways ``word`` (normalised) is written: without its suffix, or a
    subdistrict with another form of its suffix."""
    for suffix in DISTRICT_SUFFIXES:
        if word.endswith(suffix):
            if len(word) - len(suffix) >= 2:
                yield word[: -len(suffix)]
            return
    for suffix in DISTRICT_SUFFIXES_EN:
        if word.endswith(suffix):
            if len(word) - len(suffix) >= 3:
                yield word[: -len(suffix)]
            return
    for suffix in TOWN_SUFFIXES:
        if word.endswith(suffix):
            stem = word[: -len(suffix)]
            if suffix in SUBDISTRICT_SUFFIXES and stem:
                yield from (stem + other for other in (*SUBDISTRICT_SUFFIXES, "街"))
            if len(stem) >= STEM_MIN:
                yield stem
            return
    for suffix in ROAD_SUFFIXES:
        if word.endswith(suffix):
            stem = word[: -len(suffix)]
            if len(stem) >= STEM_MIN and _cjk(stem[-1]):
                yield stem
            return


# ------------------------------------------------------------------ the gazetteer


@dataclass
class _Entry:
    display: str  # as the catalogue writes it (for reasons)
    exact: bool  # a catalogue word, not a shortened form of one
    districts: set[str] = field(default_factory=set)
    offices: set[str] = field(default_factory=set)  # street offices (department codes)


@dataclass(frozen=True)
class Match:
    word: str  # as the catalogue writes it
    start: int  # in the normalised text
    district: str | None  # None: the word names places in several districts
    offices: frozenset[str]


@dataclass(frozen=True)
class Place:
    """Where a text places a ticket: the district, the street offices that cover the
    best street word found in it (the longest, in the first text that has one), and
    every place word found, in text order."""

    district: str | None = None
    district_word: str | None = None
    street_word: str | None = None
    street_offices: frozenset[str] = frozenset()
    words: tuple[str, ...] = ()

    def office_among(self, offices: Iterable[str]) -> str | None:
        """The street office among ``offices`` (e.g. one bureau's) that covers the street
        word; None when that bureau has no office there."""
        hit = sorted(self.street_offices.intersection(offices))
        return hit[0] if hit else None


class Gazetteer:
    """The catalogue's place words, compiled into one longest-first pattern."""

    def __init__(self, entries: Mapping[str, _Entry], office_district: Mapping[str, str]) -> None:
        self._entries = dict(entries)
        self._office_district = dict(office_district)  # street office → its district
        self._pattern = re.compile(_trie_pattern(self._entries)) if self._entries else None

    @classmethod
    def from_catalogue(cls, catalogue: Catalogue) -> Gazetteer:
        entries: dict[str, _Entry] = {}
        office_district: dict[str, str] = {}

        def add(word: str, district: str, office: str | None) -> None:
            norm = normalise(word)
            if not norm:
                return
            _put(entries, norm, word.strip(), True, district, office)
            for variant in _variants(norm):
                if variant == norm:
                    continue
                same = norm == word.strip().lower() and variant in norm
                display = word.strip()[: len(variant)] if same else variant
                _put(entries, variant, display, False, district, office)

        for d in catalogue.districts.values():
            for word in (d.name_zh, d.name_en, *d.keywords):
                add(word, d.code, None)
        for dept in catalogue.departments.values():
            if dept.level == "street" and dept.district in catalogue.districts:
                office_district[dept.code] = dept.district
                for word in dept.keywords:
                    add(word, dept.district, dept.code)
        return cls(entries, office_district)

    def matches(self, text: str | None) -> list[Match]:
        """The place words of ``text``, left to right, the longest at each place."""
        if not text or self._pattern is None:
            return []
        out = []
        for m in self._pattern.finditer(normalise(text)):
            e = self._entries[m.group()]
            district = next(iter(e.districts)) if len(e.districts) == 1 else None
            out.append(Match(e.display, m.start(), district, frozenset(e.offices)))
        return out

    def locate(self, *texts: str | None, district: str | None = None) -> Place:
        """The place that ``texts`` (most telling first, e.g. the address, then the
        description) name: the district from the first text that names one (its longest
        word), unless ``district`` is already known; then the street words in it."""
        found = [self.matches(t) for t in texts]
        word = None
        if district is None:
            for ms in found:
                placed = [m for m in ms if m.district is not None]
                if placed:
                    best = max(placed, key=lambda m: (len(m.word), -m.start))
                    district, word = best.district, best.word
                    break
        if district is None:
            return Place(words=tuple(m.word for ms in found for m in ms))
        street: tuple[str | None, frozenset[str]] = (None, frozenset())
        for ms in found:  # the first text with a street of the district, its longest word
            candidates = []
            for m in ms:
                offices = frozenset(o for o in m.offices if self._office_district[o] == district)
                if offices:
                    candidates.append((len(m.word), -m.start, m.word, offices))
            if candidates:
                street = max(candidates)[2:]
                break
        return Place(
            district=district,
            district_word=word,
            street_word=street[0],
            street_offices=street[1],
            words=tuple(m.word for ms in found for m in ms),
        )


def _alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _trie_pattern(words: Iterable[str]) -> str:
    """One regular expression matching any of ``words``, the longest at each place.

    The words share their prefixes (a trie), so the engine follows one branch per
    character instead of trying every word in turn. At a node the longer words come
    before the one that ends there. Latin words must not sit inside a longer word.
    """
    end = ""  # the key marking that a word ends at a node
    root: dict[str, Any] = {}
    for w in words:
        node = root
        for ch in w:
            node = node.setdefault(ch, {})
        node[end] = True

    def emit(node: dict[str, Any], last: str) -> str:
        alts = [re.escape(ch) + emit(child, ch) for ch, child in sorted(node.items()) if ch]
        if end in node:
            alts.append(r"(?![a-z0-9])" if _alnum(last) else "")
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    heads = [
        (r"(?<![a-z0-9])" if _alnum(ch) else "") + re.escape(ch) + emit(child, ch)
        for ch, child in sorted(root.items())
    ]
    # The look-ahead lets the engine skip every place no word starts at (ten times faster).
    first = "".join(re.escape(ch) for ch in sorted(root))
    return f"(?=[{first}])(?:{'|'.join(heads)})"


def _put(
    entries: dict[str, _Entry],
    word: str,
    display: str,
    exact: bool,
    district: str,
    office: str | None,
) -> None:
    """Add a word's place; a catalogue word displaces a shortened form of another."""
    e = entries.get(word)
    if e is None or (exact and not e.exact):
        e = entries[word] = _Entry(display, exact)
    elif e.exact and not exact:
        return
    e.districts.add(district)
    if office:
        e.offices.add(office)


_GAZETTEER = "_places_gazetteer"


def gazetteer_for(catalogue: Catalogue) -> Gazetteer:
    """The gazetteer of a catalogue snapshot, built on first use and kept with it
    (snapshots are replaced, never changed, when the catalogue is edited)."""
    kept = vars(catalogue).get(_GAZETTEER)
    if kept is None:
        kept = vars(catalogue)[_GAZETTEER] = Gazetteer.from_catalogue(catalogue)
    return kept  # type: ignore[no-any-return]


# ------------------------------------------------------------------ district boundaries


class BoundaryError(ValueError):
    """The boundaries file cannot be used; ``str()`` is one line saying why."""


class DistrictBoundaries:
    """District polygons in an STR tree: which district a point lies in."""

    def __init__(self, features: list[tuple[str, Any]], source: str = "") -> None:
        from shapely import STRtree, prepare

        if not features:
            raise BoundaryError("no features")
        self.source = source
        self.codes: tuple[str, ...] = tuple(code for code, _ in features)
        self._geometries = [geom for _, geom in features]
        for geom in self._geometries:
            prepare(geom)
        self._tree = STRtree(self._geometries)

    def district_at(self, lat: float, lon: float) -> str | None:
        """The district whose boundary holds the point (on a border: the earlier feature)."""
        from shapely import Point

        if not (math.isfinite(lat) and math.isfinite(lon)):
            return None
        hits = self._tree.query(Point(lon, lat), predicate="intersects")
        return self.codes[int(min(hits))] if len(hits) else None

    def unknown_codes(self, known: Iterable[str]) -> list[str]:
        known_set = set(known)
        return sorted({c for c in self.codes if c not in known_set})

    def check_codes(self, known: Iterable[str]) -> None:
        """BoundaryError when a feature names a district the catalogue does not have."""
        known_list = sorted(known)
        unknown = self.unknown_codes(known_list)
        if unknown:
            raise BoundaryError(
                f"features name districts the catalogue does not have: {', '.join(unknown)} "
                f"(known: {', '.join(known_list) or 'none'})"
            )


def _position(value: Any, where: str) -> tuple[float, float]:
    if (
        not isinstance(value, list | tuple)
        or len(value) < 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value[:2])
    ):
        raise BoundaryError(f"{where}: a position is [longitude, latitude]")
    lon, lat = float(value[0]), float(value[1])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BoundaryError(f"{where}: [{lon:g}, {lat:g}] is not a [longitude, latitude]")
    return lon, lat


def _ring(value: Any, where: str) -> list[tuple[float, float]]:
    if not isinstance(value, list) or len(value) < 4:
        raise BoundaryError(f"{where}: a ring needs at least 4 positions")
    ring = [_position(p, where) for p in value]
    if ring[0] != ring[-1]:
        raise BoundaryError(f"{where}: a ring must end where it starts")
    return ring


def _polygon(value: Any, where: str) -> Any:
    from shapely import Polygon

    if not isinstance(value, list) or not value:
        raise BoundaryError(f"{where}: a polygon is a list of rings (the outline, then holes)")
    rings = [_ring(r, where) for r in value]
    return Polygon(rings[0], rings[1:])


def _geometry(value: Any, where: str) -> Any:
    from shapely import MultiPolygon, is_valid_reason

    if not isinstance(value, dict):
        raise BoundaryError(f"{where}: no geometry")
    kind, coordinates = value.get("type"), value.get("coordinates")
    if kind == "Polygon":
        geom = _polygon(coordinates, where)
    elif kind == "MultiPolygon":
        if not isinstance(coordinates, list) or not coordinates:
            raise BoundaryError(f"{where}: a MultiPolygon is a list of polygons")
        geom = MultiPolygon([_polygon(p, where) for p in coordinates])
    else:
        raise BoundaryError(f"{where}: geometry {kind!r} is not a Polygon or MultiPolygon")
    if not geom.is_valid:
        raise BoundaryError(f"{where}: invalid geometry ({is_valid_reason(geom)})")
    return geom


def parse_boundaries(data: Any, source: str = "") -> DistrictBoundaries:
    """Boundaries from a parsed GeoJSON FeatureCollection; BoundaryError names the fault."""
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise BoundaryError("not a GeoJSON FeatureCollection")
    features = data.get("features")
    if not isinstance(features, list) or not features:
        raise BoundaryError("the FeatureCollection has no features")
    out = []
    for n, feature in enumerate(features, 1):
        where = f"feature {n}"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise BoundaryError(f"{where}: not a Feature")
        props = feature.get("properties")
        code = props.get(CODE_PROPERTY) if isinstance(props, dict) else None
        if not isinstance(code, str) or not code.strip():
            raise BoundaryError(f"{where}: no property '{CODE_PROPERTY}' naming its district")
        out.append((code.strip(), _geometry(feature.get("geometry"), f"{where} ({code})")))
    return DistrictBoundaries(out, source)


def read_boundaries(path: Path) -> DistrictBoundaries:
    """Boundaries from a GeoJSON file; BoundaryError (one line) when it cannot be used."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise BoundaryError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BoundaryError(f"{path} is not JSON ({exc})") from None
    return parse_boundaries(data, str(path))


@lru_cache(maxsize=4)
def _cached(path: str, _mtime_ns: int, _size: int) -> DistrictBoundaries:
    return read_boundaries(Path(path))


def load_boundaries(path: Path) -> DistrictBoundaries:
    """:func:`read_boundaries`, once per file version (settings check it, the runtime
    holds it: one read at start-up)."""
    try:
        st = Path(path).stat()
    except OSError as exc:
        raise BoundaryError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _cached(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)
