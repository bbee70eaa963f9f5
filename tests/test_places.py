"""Places: address words → district and street office; a location → district by boundary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contact.app import create_app
from contact.places import (
    BoundaryError,
    Gazetteer,
    gazetteer_for,
    normalise,
    parse_boundaries,
    read_boundaries,
)
from contact.routing import (
    Catalogue,
    DepartmentInfo,
    DistrictInfo,
    RoutingRequest,
    RuleRouter,
    ServiceInfo,
    explain,
    find_district,
)
from contact.seed import places as demo_places
from contact.seed.demo import demo_catalogue
from contact.settings import Settings, SettingsError, load_settings
from tests.conftest import ROOT, login

DEMO_BOUNDARIES = Path(__file__).resolve().parent.parent / "contact" / "seed" / "districts.geojson"


@pytest.fixture(scope="module")
def demo() -> Catalogue:
    return demo_catalogue().routing_catalogue()


@pytest.fixture(scope="module")
def gazetteer(demo: Catalogue) -> Gazetteer:
    return gazetteer_for(demo)


def small_catalogue() -> Catalogue:
    """A county with a new district known by its name only, and a town street office."""
    return Catalogue(
        services={
            "street-light": ServiceInfo(
                1, "street-light", "路灯", "Light", "complaint", ("路灯",), "cgj", True, 1
            ),
        },
        departments={
            "cgj": DepartmentInfo(1, "cgj", "城管局", "UM", "bureau", None, None),
            "cgj-bh": DepartmentInfo(2, "cgj-bh", "滨海城管", "UM BH", "district", "cgj", "bh"),
            "cgj-bh-cg": DepartmentInfo(
                3,
                "cgj-bh-cg",
                "城关中队",
                "UM CG",
                "street",
                "cgj-bh",
                "bh",
                ("城关镇", "Chengguan Town", "新华街道", "幸福里大道", "河西新村镇"),
            ),
            "cgj-sx": DepartmentInfo(4, "cgj-sx", "山西城管", "UM SX", "district", "cgj", "sx"),
        },
        districts={
            "bh": DistrictInfo(1, "bh", "滨海新区", "Binhai District", ()),
            "sx": DistrictInfo(2, "sx", "山西县", "Shanxi County", ("大山路",)),
        },
    )


# ------------------------------------------------------------------ the gazetteer


class TestGazetteer:
    @pytest.mark.parametrize(
        ("text", "district", "word"),
        [
            ("东湖区民主路12号", "dh", "东湖区"),  # the district's name
            ("江北 跃进路", "jb", "跃进路"),  # longest word wins over the alias 江北
            ("西山体育馆北门", "xs", "西山体育馆"),
            ("高新技术开发区", "gx", "高新技术开发区"),  # beats 高新区's stem 高新
            ("88 Jiefang Road, Donghu", "dh", "Jiefang Road"),
            ("Nanhu District", "nh", "Nanhu District"),
        ],
    )
    def test_district_by_name_and_by_street(
        self, gazetteer: Gazetteer, text: str, district: str, word: str
    ) -> None:
        place = gazetteer.locate(text)
        assert (place.district, place.district_word) == (district, word)

    def test_a_street_names_its_street_offices(self, gazetteer: Gazetteer) -> None:
        place = gazetteer.locate("东湖区解放路88号")
        assert place.district == "dh" and place.street_word == "解放路"
        assert place.street_offices == {"cgj-dh-jf", "scj-dh-jf", "gaj-dh-jf"}
        assert place.words == ("东湖区", "解放路")
        # a street alone places the district too
        by_street = gazetteer.locate("湖滨路")
        assert by_street.district == "dh" and by_street.street_offices == {"cgj-dh-hb", "gaj-dh-hb"}

    def test_longest_match_first(self, gazetteer: Gazetteer) -> None:
        # 东湖公园 is a park of the 湖滨 subdistrict, not "东湖" + "公园"
        park = gazetteer.locate("东湖公园门口")
        assert park.words == ("东湖公园",) and park.street_offices == {"cgj-dh-hb", "gaj-dh-hb"}
        # 解放路步行街 (a landmark) is one word, not 解放路 + 步行街
        assert gazetteer.locate("解放路步行街").words == ("解放路步行街",)
        # the district's own name never names a street office: 南湖区 ≠ 南湖(街道)
        nanhu = gazetteer.locate("南湖区")
        assert nanhu.district == "nh" and nanhu.street_offices == frozenset()

    def test_full_width_text_and_spaces(self, gazetteer: Gazetteer) -> None:
        assert normalise("ＤＯＮＧＨＵ　Ｄｉｓｔｒｉｃｔ，８８号") == "donghu district,88号"
        assert normalise("东 湖 区  解放路  88 号") == "东湖区解放路88号"
        assert normalise("88  Jiefang\tRoad") == "88 jiefang road"
        assert gazetteer.locate("ＤＯＮＧＨＵ　Ｄｉｓｔｒｉｃｔ").district == "dh"
        assert gazetteer.locate("东 湖 区 湖 滨 路").street_word == "湖滨路"
        assert gazetteer.locate("解放街道办事处").street_offices == {
            "cgj-dh-jf",
            "scj-dh-jf",
            "gaj-dh-jf",
        }
        assert gazetteer.locate("88 JIEFANG   ROAD").street_word == "Jiefang Road"

    def test_latin_words_are_whole_words(self, gazetteer: Gazetteer) -> None:
        assert gazetteer.locate("Hubinxyz road").district is None
        assert gazetteer.locate("the xnanhu estate").district is None

    @pytest.mark.parametrize(
        "text",
        ["火星基地", "", None, "   ", "Springfield", "人民医院", "解放军", "Renmin Hospital"],
    )
    def test_unknown_is_none(self, gazetteer: Gazetteer, text: str | None) -> None:
        place = gazetteer.locate(text)
        assert place.district is None and place.street_offices == frozenset()
        assert find_district(demo_catalogue().routing_catalogue(), text) == (None, None)

    def test_the_first_text_that_names_a_district_decides(self, gazetteer: Gazetteer) -> None:
        place = gazetteer.locate("江北区", "东湖区解放路的路灯")
        assert place.district == "jb" and place.street_offices == frozenset()  # 解放路 is in dh
        place = gazetteer.locate(None, "东湖区解放路的路灯")
        assert place.district == "dh" and place.street_word == "解放路"

    def test_streets_only_within_a_known_district(self, gazetteer: Gazetteer) -> None:
        assert gazetteer.locate("解放路", district="jb").street_offices == frozenset()
        assert gazetteer.locate("解放路", district="dh").street_word == "解放路"

    def test_names_with_and_without_suffixes(self) -> None:
        g = Gazetteer.from_catalogue(small_catalogue())
        for text in ("滨海新区", "滨海", "Binhai District", "binhai"):
            assert g.locate(text).district == "bh", text
        for text in ("山西县大山路", "山西", "Shanxi County", "大山路"):
            assert g.locate(text).district == "sx", text
        # a subdistrict with any form of its suffix; a long name or road without it
        for text in (
            "城关镇",
            "Chengguan Town",
            "新华街道",
            "新华街道办事处",
            "新华街3号",
            "幸福里大道",
            "幸福里3号",
            "河西新村",
        ):
            place = g.locate(text)
            assert (place.district, place.street_offices) == ("bh", {"cgj-bh-cg"}), text
        # stems of fewer than three characters name too many things (新华书店, 大山里)
        for text in ("城关", "Chengguan", "新华书店", "大山"):
            assert g.locate(text).district is None, text

    def test_a_word_in_two_districts_places_neither(self) -> None:
        cat = small_catalogue()
        cat.districts["sx"] = DistrictInfo(
            2, "sx", "山西县", "Shanxi County", ("大山路", "幸福里大道")
        )
        cat = Catalogue(cat.services, cat.departments, cat.districts)
        g = Gazetteer.from_catalogue(cat)
        assert g.locate("幸福里大道").district is None
        assert g.locate("滨海新区幸福里大道").street_offices == {"cgj-bh-cg"}

    def test_the_gazetteer_is_kept_with_its_snapshot(self, demo: Catalogue) -> None:
        assert gazetteer_for(demo) is gazetteer_for(demo)
        assert gazetteer_for(demo) is not gazetteer_for(demo_catalogue().routing_catalogue())

    def test_routes_to_the_street_office_as_before(self, demo: Catalogue) -> None:
        router = RuleRouter()
        d = router.route(demo, RoutingRequest(text="路灯不亮", address="东湖区中山路5号"))
        assert (d.district, d.department) == ("dh", "cgj-dh-jf")
        # the market bureau has no office for 湖滨: its district office
        d = router.route(
            demo, RoutingRequest(text="超市卖过期食品", service="food-safety", address="湖滨路3号")
        )
        assert (d.district, d.department) == ("dh", "scj-dh")
        # ... even when the description names a street where it has one: the address decides
        d = router.route(
            demo,
            RoutingRequest(
                text="解放路上的超市卖过期食品", service="food-safety", address="湖滨路3号"
            ),
        )
        assert d.department == "scj-dh"


# ------------------------------------------------------------------ boundaries


def square(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def feature(code: Any, kind: str, coordinates: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"code": code},
        "geometry": {"type": kind, "coordinates": coordinates},
    }


# "a" is a square with a hole; the hole and an island far off are "b" (a MultiPolygon).
TWO = collection(
    feature("a", "Polygon", [square(0, 0, 10, 10), square(4, 4, 6, 6)]),
    feature("b", "MultiPolygon", [[square(4, 4, 6, 6)], [square(20, 20, 22, 22)]]),
)


class TestBoundaries:
    def test_inside_outside_hole_and_multipolygon(self) -> None:
        b = parse_boundaries(TWO)
        assert b.district_at(lat=1, lon=1) == "a"
        assert b.district_at(lat=5, lon=5) == "b"  # in a's hole: b's first part
        assert b.district_at(lat=21, lon=21) == "b"  # b's second part
        assert b.district_at(lat=15, lon=15) is None
        assert b.district_at(lat=-1, lon=5) is None
        assert b.district_at(lat=4, lon=5) == "a"  # on the shared border: the earlier feature
        assert b.district_at(lat=float("nan"), lon=1) is None

    def test_latitude_and_longitude_are_not_swapped(self) -> None:
        b = parse_boundaries(collection(feature("wide", "Polygon", [square(0, 0, 10, 1)])))
        assert b.district_at(lat=0.5, lon=9) == "wide"
        assert b.district_at(lat=9, lon=0.5) is None

    @pytest.mark.parametrize(
        ("data", "says"),
        [
            ([], "FeatureCollection"),
            ({"type": "Feature"}, "FeatureCollection"),
            (collection(), "no features"),
            (collection({"type": "Point"}), "feature 1: not a Feature"),
            (collection(feature(None, "Polygon", [square(0, 0, 1, 1)])), "property 'code'"),
            (collection(feature(" ", "Polygon", [square(0, 0, 1, 1)])), "property 'code'"),
            (collection(feature("a", "Point", [1, 2])), "not a Polygon or MultiPolygon"),
            (collection(feature("a", "Polygon", [[[0, 0], [1, 0], [0, 0]]])), "at least 4"),
            (collection(feature("a", "Polygon", [[[0, 0], [1, 0], [1, 1], [0, 1]]])), "end where"),
            (collection(feature("a", "Polygon", [square(0, 0, 1, 100)])), "[longitude, latitude]"),
            (collection(feature("a", "Polygon", [[[0, 0], "x", [1, 1], [0, 0]]])), "position"),
            (
                collection(feature("a", "Polygon", [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]])),
                "invalid geometry (Self-intersection",
            ),
            (collection(feature("a", "MultiPolygon", [])), "list of polygons"),
        ],
    )
    def test_a_bad_file_says_what_is_wrong(self, data: Any, says: str) -> None:
        with pytest.raises(BoundaryError) as err:
            parse_boundaries(data)
        assert says in str(err.value) and "\n" not in str(err.value)

    def test_the_setting_names_the_fault_in_one_line(self, tmp_path: Path) -> None:
        bad = tmp_path / "bad.geojson"
        bad.write_text("{not json", encoding="utf-8")
        cases = {
            str(tmp_path / "missing.geojson"): "cannot read",
            str(bad): "is not JSON",
        }
        shape = tmp_path / "shape.geojson"
        shape.write_text(json.dumps(collection(feature("a", "LineString", [[0, 0], [1, 1]]))))
        cases[str(shape)] = "not a Polygon or MultiPolygon"
        for path, says in cases.items():
            with pytest.raises(SettingsError) as err:
                load_settings(DISTRICTS_GEOJSON=path)
            line = str(err.value)
            assert (
                line.startswith("setting CONTACT_DISTRICTS_GEOJSON is invalid: ") and says in line
            )
            assert "\n" not in line
        assert load_settings(DISTRICTS_GEOJSON="").DISTRICTS_GEOJSON is None

    def test_the_demo_boundaries_fit_the_demo_city(self) -> None:
        b = read_boundaries(DEMO_BOUNDARIES)
        assert sorted(set(b.codes)) == sorted(d["code"] for d in demo_places.DISTRICTS)
        for d in demo_places.DISTRICTS:  # demo tickets lie within 0.02° of the centre
            lat, lon = d["center"]
            for dy in (-0.02, 0, 0.02):
                for dx in (-0.02, 0, 0.02):
                    assert b.district_at(lat + dy, lon + dx) == d["code"], (d["code"], dy, dx)
        assert b.district_at(30.462, 114.352) == "gx"  # Gaoxin's piece inside Nanhu
        assert b.district_at(30.475, 114.352) == "nh"
        assert b.district_at(31.5, 114.3) is None


# ------------------------------------------------------------------ routing by location


def with_boundaries(settings: Settings, path: Path) -> Settings:
    values = {k: v for k, v in settings.model_dump().items() if v is not None}
    return load_settings(**{**values, "DISTRICTS_GEOJSON": str(path)})


class TestRoutingByLocation:
    def test_the_router_uses_the_location_when_the_address_names_no_district(
        self, demo: Catalogue
    ) -> None:
        router = RuleRouter(read_boundaries(DEMO_BOUNDARIES))
        at_jb = dict(lat=30.6150, lon=114.2980)
        d = router.route(demo, RoutingRequest(text="路灯不亮", service="street-light", **at_jb))
        assert (d.district, d.department) == ("jb", "cgj-jb")
        assert "district jb (by location)" in d.reason
        assert "区域 江北区（按位置）" in explain(d.why, demo, "zh-CN")
        # the street office still comes from the words
        d = router.route(demo, RoutingRequest(text="站前路路灯不亮", **at_jb))
        assert d.department == "cgj-jb-bz"
        # the address's words win over the location; the description's do not
        d = router.route(demo, RoutingRequest(text="路灯不亮", address="东湖区", **at_jb))
        assert d.district == "dh"
        d = router.route(demo, RoutingRequest(text="东湖区的路灯不亮", **at_jb))
        assert d.district == "jb"
        # outside every boundary, or without boundaries: by words only, as before
        far = RoutingRequest(text="东湖区的路灯不亮", lat=31.5, lon=114.3)
        assert router.route(demo, far).district == "dh"
        assert RuleRouter().route(demo, RoutingRequest(text="路灯不亮", **at_jb)).district is None

    def test_a_ticket_with_only_a_location_lands_in_its_district(self, settings: Settings) -> None:
        with TestClient(create_app(with_boundaries(settings, DEMO_BOUNDARIES))) as client:
            agent = login(client, "agent1")
            body = {"description": "门口路灯不亮", "service": "street-light", "channel": "voice"}
            r = client.post(
                "/api/v1/tickets", headers=agent, json={**body, "lat": 30.5480, "lon": 114.2380}
            )
            assert r.status_code == 201, r.text
            t = r.json()
            assert t["district"] == "xs" and t["routing"]["department"] == "cgj-xs"
            assert "按位置" in t["routing"]["reason"] or "by location" in t["routing"]["reason"]
            # the exclave: a hole in Nanhu that belongs to Gaoxin
            r = client.post(
                "/api/v1/tickets", headers=agent, json={**body, "lat": 30.462, "lon": 114.352}
            )
            assert r.status_code == 201 and r.json()["district"] == "gx", r.text
            assert r.json()["routing"]["department"] == "cgj-gx"

    def test_a_boundary_of_an_unknown_district_stops_start_up(
        self, settings: Settings, tmp_path: Path
    ) -> None:
        path = tmp_path / "districts.geojson"
        path.write_text(
            json.dumps(collection(feature("zz", "Polygon", [square(114, 30, 115, 31)]))),
            encoding="utf-8",
        )
        with pytest.raises(SettingsError) as err:  # noqa: SIM117
            with TestClient(create_app(with_boundaries(settings, path))):
                pass
        line = str(err.value)
        assert line.startswith("setting CONTACT_DISTRICTS_GEOJSON is invalid: ")
        assert "zz" in line and "known: dh, gx, jb, nh, xs" in line and "\n" not in line

    def test_the_worker_refuses_it_too(self, settings: Settings, tmp_path: Path) -> None:
        path = tmp_path / "districts.geojson"
        path.write_text(
            json.dumps(collection(feature("zz", "Polygon", [square(114, 30, 115, 31)]))),
            encoding="utf-8",
        )
        env = {
            **os.environ,
            "CONTACT_DATABASE_URL": settings.DATABASE_URL,
            "CONTACT_SECRET_KEY": settings.SECRET_KEY,
            "CONTACT_REDIS_URL": "redis://127.0.0.1:6379/12",  # not reached
            "CONTACT_DISTRICTS_GEOJSON": str(path),
        }
        done = subprocess.run(
            [sys.executable, "-m", "contact.cli", "worker"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert lines[-1].startswith("contact: setting CONTACT_DISTRICTS_GEOJSON is invalid: ")
        assert "zz" in lines[-1] and "Traceback" not in done.stderr
