"""Import every workflow's tables so SQLModel's metadata (and Alembic) sees them."""

from workflows.agreement.models import Decision, DocumentVersion, PartySignatory, Signature

__all__ = ["Decision", "DocumentVersion", "PartySignatory", "Signature"]
