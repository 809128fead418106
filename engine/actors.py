"""Who acts: a person (with roles and organisation) or the system itself, possibly for someone else."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """The authenticated caller of one operation."""

    person_id: int | None
    name: str
    roles: frozenset[str]
    organisation_id: int | None
    # a substitute (varahenkilö) acts for this person during a delegation period
    on_behalf_of_person_id: int | None = None
    # the delegation that allowed it (recorded, with the person, in the hashed event payload)
    delegation_id: int | None = None

    @property
    def is_system(self) -> bool:
        """Tell whether this is the engine itself (timers, parent reactions)."""
        return self.person_id is None

    @property
    def is_admin(self) -> bool:
        """Tell whether the actor holds the admin role."""
        return "admin" in self.roles


SYSTEM = Actor(person_id=None, name="system", roles=frozenset({"system"}), organisation_id=None)
