"""The demo city's map and its departments: 江城市 / Jiangcheng, a fictional city.

Data only. Every address word (district name, subdistrict, road, landmark) belongs
to exactly one district, so that an address such as "江城市东湖区解放路88号" or
"88 Jiefang Road, Donghu" places a ticket in one district.
"""

from __future__ import annotations

from typing import Any

CITY_ZH = "江城市"
CITY_EN = "Jiangcheng"

# A district: its name variants, its subdistricts (街道) with their roads and landmarks,
# and a few roads and landmarks that no street office of the demo covers.
# Roads and landmarks are (zh, en) pairs.
DISTRICTS: list[dict[str, Any]] = [
    {
        "code": "dh",
        "name_zh": "东湖区",
        "name_en": "Donghu District",
        "aliases": ["东湖", "Donghu"],
        "center": (30.5540, 114.3470),
        "weight": 26,
        "streets": [
            {
                "code": "jf",
                "name_zh": "解放街道",
                "name_en": "Jiefang Subdistrict",
                "roads": [("解放路", "Jiefang Road"), ("中山路", "Zhongshan Road")],
                "landmarks": [("江城广场", "Jiangcheng Square"), ("解放路步行街", "Jiefang Mall")],
            },
            {
                "code": "hb",
                "name_zh": "湖滨街道",
                "name_en": "Hubin Subdistrict",
                "roads": [("湖滨路", "Hubin Road"), ("梨园路", "Liyuan Road")],
                "landmarks": [("东湖公园", "Donghu Park"), ("湖滨花园小区", "Hubin Garden")],
            },
        ],
        "roads": [("民主路", "Minzhu Road"), ("友谊大道", "Youyi Avenue")],
        "landmarks": [("东湖区政府", "Donghu District Government"), ("市图书馆", "City Library")],
    },
    {
        "code": "jb",
        "name_zh": "江北区",
        "name_en": "Jiangbei District",
        "aliases": ["江北", "Jiangbei"],
        "center": (30.6150, 114.2980),
        "weight": 22,
        "streets": [
            {
                "code": "bz",
                "name_zh": "北站街道",
                "name_en": "Beizhan Subdistrict",
                "roads": [("北京路", "Beijing Road"), ("站前路", "Zhanqian Road")],
                "landmarks": [("江北火车站", "Jiangbei Railway Station")],
            },
            {
                "code": "bj",
                "name_zh": "滨江街道",
                "name_en": "Binjiang Subdistrict",
                "roads": [("滨江大道", "Binjiang Avenue"), ("长江路", "Changjiang Road")],
                "landmarks": [("滨江公园", "Binjiang Park"), ("长江二桥", "Second Yangtze Bridge")],
            },
        ],
        "roads": [("建设大道", "Jianshe Avenue"), ("跃进路", "Yuejin Road")],
        "landmarks": [("江北商业中心", "Jiangbei Business Centre")],
    },
    {
        "code": "xs",
        "name_zh": "西山区",
        "name_en": "Xishan District",
        "aliases": ["西山", "Xishan"],
        "center": (30.5480, 114.2380),
        "weight": 20,
        "streets": [
            {
                "code": "rm",
                "name_zh": "人民街道",
                "name_en": "Renmin Subdistrict",
                "roads": [("人民路", "Renmin Road"), ("青年路", "Qingnian Road")],
                "landmarks": [("人民广场", "People's Square")],
            },
            {
                "code": "fl",
                "name_zh": "枫林街道",
                "name_en": "Fenglin Subdistrict",
                "roads": [("枫林路", "Fenglin Road"), ("工人村路", "Gongrencun Road")],
                "landmarks": [("西山公园", "Xishan Park"), ("工人新村", "Gongren Xincun estate")],
            },
        ],
        "roads": [("和平大道", "Heping Avenue"), ("钢城路", "Gangcheng Road")],
        "landmarks": [("西山体育馆", "Xishan Stadium")],
    },
    {
        "code": "gx",
        "name_zh": "高新区",
        "name_en": "Gaoxin (High-tech Zone)",
        "aliases": ["高新技术开发区", "高新", "Gaoxin", "High-tech Zone"],
        "center": (30.4980, 114.4150),
        "weight": 13,
        "streets": [
            {
                "code": "rjy",
                "name_zh": "软件园街道",
                "name_en": "Ruanjianyuan Subdistrict",
                "roads": [("科技路", "Keji Road"), ("创业大道", "Chuangye Avenue")],
                "landmarks": [("软件园", "Software Park")],
            },
        ],
        "roads": [("光明大道", "Guangming Avenue"), ("未来城路", "Weilaicheng Road")],
        "landmarks": [("高新区管委会", "High-tech Zone Administration"), ("未来城", "Future City")],
    },
    {
        "code": "nh",
        "name_zh": "南湖区",
        "name_en": "Nanhu District",
        "aliases": ["南湖", "Nanhu"],
        "center": (30.4950, 114.3200),
        "weight": 19,
        "streets": [
            {
                "code": "dxc",
                "name_zh": "大学城街道",
                "name_en": "Daxuecheng Subdistrict",
                "roads": [("学府路", "Xuefu Road"), ("文昌路", "Wenchang Road")],
                "landmarks": [("大学城", "University Town"), ("江城大学", "Jiangcheng University")],
            },
            {
                "code": "nhj",
                "name_zh": "南湖街道",
                "name_en": "Nanhu Subdistrict",
                "roads": [("南湖大道", "Nanhu Avenue"), ("机场路", "Jichang Road")],
                "landmarks": [("南湖公园", "Nanhu Park"), ("江城南站", "Jiangcheng South Station")],
            },
        ],
        "roads": [("书城路", "Shucheng Road")],
        "landmarks": [("南湖体育中心", "Nanhu Sports Centre")],
    },
]


def _short(name_zh: str) -> str:
    """东湖区 → 东湖, 解放街道 → 解放."""
    for suffix in ("街道", "区"):
        if name_zh.endswith(suffix):
            return name_zh[: -len(suffix)]
    return name_zh


def _short_en(name_en: str) -> str:
    """Donghu District → Donghu, Jiefang Subdistrict → Jiefang."""
    for suffix in (" District", " Subdistrict", " (High-tech Zone)"):
        if name_en.endswith(suffix):
            return name_en[: -len(suffix)]
    return name_en


def street_words(street: dict[str, Any]) -> list[str]:
    """The address words of a subdistrict: its name and its roads and landmarks, zh and en."""
    words = [street["name_zh"], street["name_en"]]
    for zh, en in (*street["roads"], *street["landmarks"]):
        words += [zh, en]
    return words


def district_keywords(district: dict[str, Any]) -> list[str]:
    """Every word that places an address in ``district`` (names, streets, landmarks)."""
    words = [district["name_zh"], *district["aliases"], district["name_en"]]
    for street in district["streets"]:
        words += street_words(street)
    for zh, en in (*district["roads"], *district["landmarks"]):
        words += [zh, en]
    out: list[str] = []
    for w in words:
        if w not in out:
            out.append(w)
    return out


# ---------------------------------------------------------------- departments

# City bureaus (level "bureau"). A territorial bureau has an office in every district
# (level "district", code "<bureau>-<district>"); names of those offices follow the
# patterns below ({d}: 东湖区, {s}: 东湖, {de}: Donghu District, {se}: Donghu).
BUREAUS: list[dict[str, Any]] = [
    {
        "code": "cgj",
        "name_zh": "市城市管理局",
        "name_en": "Urban Management Bureau",
        "office_zh": "{d}城市管理局",
        "office_en": "{de} Urban Management Bureau",
        "street_zh": "{s}城管中队",
        "street_en": "{se} Urban Management Squad",
    },
    {
        "code": "zjj",
        "name_zh": "市住房和城乡建设局",
        "name_en": "Housing and Construction Bureau",
        "office_zh": "{d}住房和城乡建设局",
        "office_en": "{de} Housing and Construction Bureau",
    },
    {
        "code": "jtj",
        "name_zh": "市交通运输局",
        "name_en": "Transport Bureau",
    },
    {
        "code": "hbj",
        "name_zh": "市生态环境局",
        "name_en": "Ecology and Environment Bureau",
        "office_zh": "市生态环境局{s}分局",
        "office_en": "Ecology and Environment Bureau, {se} Branch",
    },
    {
        "code": "rsj",
        "name_zh": "市人力资源和社会保障局",
        "name_en": "Human Resources and Social Security Bureau",
    },
    {
        "code": "jyj",
        "name_zh": "市教育局",
        "name_en": "Education Bureau",
    },
    {
        "code": "wjw",
        "name_zh": "市卫生健康委员会",
        "name_en": "Health Commission",
    },
    {
        "code": "scj",
        "name_zh": "市市场监督管理局",
        "name_en": "Market Regulation Administration",
        "office_zh": "{d}市场监督管理局",
        "office_en": "{de} Market Regulation Bureau",
        "street_zh": "{s}市场监管所",
        "street_en": "{se} Market Regulation Station",
    },
    {
        "code": "gaj",
        "name_zh": "市公安局（非紧急事务）",
        "name_en": "Public Security Bureau (non-emergency)",
        "office_zh": "市公安局{s}分局",
        "office_en": "Public Security Bureau, {se} Sub-bureau",
        "street_zh": "{s}派出所",
        "street_en": "{se} Police Station",
    },
    {
        "code": "swj",
        "name_zh": "市水务局",
        "name_en": "Water Authority",
        "office_zh": "{d}水务局",
        "office_en": "{de} Water Bureau",
    },
    {
        "code": "gdj",
        "name_zh": "国网江城供电公司",
        "name_en": "State Grid Jiangcheng Power Supply Company",
        "phone": "95598",
    },
    {
        "code": "rqj",
        "name_zh": "江城燃气热力集团",
        "name_en": "Jiangcheng Gas and Heating Group",
    },
    {
        "code": "mzj",
        "name_zh": "市民政局",
        "name_en": "Civil Affairs Bureau",
    },
    {
        "code": "xtb",
        "name_zh": "市12345热线协调办公室",
        "name_en": "12345 Hotline Coordination Office",
    },
    # The leaders' offices answer the letters of their mailboxes (书记信箱 / 市长信箱).
    {
        "code": "swb",
        "name_zh": "市委书记办公室",
        "name_en": "Party Secretary's Office",
    },
    {
        "code": "szb",
        "name_zh": "市长办公室",
        "name_en": "Mayor's Office",
    },
]

# Bureaus with an office in every district.
TERRITORIAL_BUREAUS: tuple[str, ...] = ("cgj", "zjj", "hbj", "scj", "gaj", "swj")

# Street offices under a district office: bureau → [(district, subdistrict)].
STREET_OFFICES: dict[str, list[tuple[str, str]]] = {
    "cgj": [
        ("dh", "jf"),
        ("dh", "hb"),
        ("jb", "bz"),
        ("jb", "bj"),
        ("xs", "rm"),
        ("xs", "fl"),
        ("gx", "rjy"),
        ("nh", "dxc"),
        ("nh", "nhj"),
    ],
    "scj": [("dh", "jf"), ("nh", "dxc")],
    "gaj": [("dh", "jf"), ("dh", "hb"), ("jb", "bz")],
}

# The department the general "other" service goes to.
COORDINATION_OFFICE = "xtb"


def build_districts() -> list[dict[str, Any]]:
    """Rows for the ``districts`` table (without ids)."""
    return [
        {
            "code": d["code"],
            "name_zh": d["name_zh"],
            "name_en": d["name_en"],
            "keywords": district_keywords(d),
        }
        for d in DISTRICTS
    ]


def build_departments() -> list[dict[str, Any]]:
    """Rows for the ``departments`` table, parents first.

    ``parent`` and ``district`` are codes (the seeder turns them into ids).
    """
    rows: list[dict[str, Any]] = []
    for b in BUREAUS:
        rows.append(
            {
                "code": b["code"],
                "name_zh": b["name_zh"],
                "name_en": b["name_en"],
                "level": "bureau",
                "parent": None,
                "district": None,
                "keywords": [],
                "phone": b.get("phone"),
            }
        )
    by_code = {b["code"]: b for b in BUREAUS}
    for code in TERRITORIAL_BUREAUS:
        b = by_code[code]
        for d in DISTRICTS:
            names = {"d": d["name_zh"], "s": _short(d["name_zh"])}
            names_en = {"de": d["name_en"], "se": _short_en(d["name_en"])}
            rows.append(
                {
                    "code": f"{code}-{d['code']}",
                    "name_zh": b["office_zh"].format(**names),
                    "name_en": b["office_en"].format(**names_en),
                    "level": "district",
                    "parent": code,
                    "district": d["code"],
                    "keywords": [],
                    "phone": None,
                }
            )
    districts = {d["code"]: d for d in DISTRICTS}
    for code, places in STREET_OFFICES.items():
        b = by_code[code]
        for district_code, street_code in places:
            street = next(
                s for s in districts[district_code]["streets"] if s["code"] == street_code
            )
            rows.append(
                {
                    "code": f"{code}-{district_code}-{street_code}",
                    "name_zh": b["street_zh"].format(s=_short(street["name_zh"])),
                    "name_en": b["street_en"].format(se=_short_en(street["name_en"])),
                    "level": "street",
                    "parent": f"{code}-{district_code}",
                    "district": district_code,
                    "keywords": street_words(street),
                    "phone": None,
                }
            )
    return rows
