"""Import every workflow's tables so SQLModel's metadata (and Alembic) sees them."""

from workflows.agreement.models import Decision, DocumentVersion, PartySignatory, Signature
from workflows.recurring_models import RECURRING_TABLES

__all__ = ["RECURRING_TABLES", "Decision", "DocumentVersion", "PartySignatory", "Signature"]
