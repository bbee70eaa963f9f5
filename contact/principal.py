"""Who is asking: a signed-in staff user, a citizen, or the system itself."""

from __future__ import annotations

from dataclasses import dataclass

from contact.lifecycle import Actor


@dataclass(frozen=True)
class Principal:
    actor: Actor
    name: str
    user_id: int | None = None
    department: str | None = None  # the department a clerk is bound to
    scope: frozenset[str] = frozenset()  # department codes a clerk may see (its own and below)
    scope_ids: frozenset[int] = frozenset()
    locale: str = "zh-CN"

    @property
    def sees_all(self) -> bool:
        return self.actor is not Actor.department

    @property
    def supervisor(self) -> bool:
        return self.actor in (Actor.supervisor, Actor.admin)

    @property
    def is_staff(self) -> bool:
        return self.actor not in (Actor.citizen, Actor.system)


SYSTEM = Principal(Actor.system, "system")
CITIZEN = Principal(Actor.citizen, "citizen")
