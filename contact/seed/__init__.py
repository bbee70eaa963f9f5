"""The demo city 江城市 / Jiangcheng: catalogue, users, knowledge base and ticket history.

``seed_demo(db, password=...)`` fills an empty database (it raises
``AlreadySeeded`` when departments exist: check ``is_empty(db)`` to skip quietly);
``demo_catalogue()`` and ``demo_history()`` give the same data without a database.
"""

from contact.seed.demo import (
    AlreadySeeded,
    DemoCatalogue,
    DemoHistory,
    SeedReport,
    calendar_rows,
    clerk_username,
    demo_catalogue,
    demo_history,
    is_empty,
    seed_demo,
    seed_url,
)

__all__ = [
    "AlreadySeeded",
    "DemoCatalogue",
    "DemoHistory",
    "SeedReport",
    "calendar_rows",
    "clerk_username",
    "demo_catalogue",
    "demo_history",
    "is_empty",
    "seed_demo",
    "seed_url",
]
