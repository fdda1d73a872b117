from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from shared.problems import NotFound


class Role(StrEnum):
    admin = "admin"
    inspector = "inspector"  # Department of Home Affairs (Sở Nội vụ): issues conclusions
    officer = "officer"  # bound to one agency: sees and changes only that agency's data
    viewer = "viewer"  # leaders and dashboards: read everything, change nothing
    service = "service"  # machine clients (the provincial TTHC system, the SMART app backend)


class Principal(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "subject": "nguyen.van.a",
                    "role": "officer",
                    "unit_id": "P21.SNV",
                    "name": "Nguyễn Văn A",
                }
            ]
        }
    }

    subject: str = Field(description="The token's `sub`.")
    role: Role
    unit_id: str | None = Field(default=None, description="The officer's agency.")
    name: str | None = None

    @property
    def sees_all_units(self) -> bool:
        return self.role is not Role.officer

    def can_access_unit(self, unit_id: str | None) -> bool:
        return self.sees_all_units or (unit_id is not None and unit_id == self.unit_id)

    def ensure_unit(self, unit_id: str | None, what: str = "resource") -> None:
        """Refuse another agency's data as not found, so its existence does not leak."""
        if not self.can_access_unit(unit_id):
            raise NotFound(f"{what} not found")

    def unit_scope(self) -> str | None:
        """The single unit an officer is confined to, or None for roles that see all."""
        return None if self.sees_all_units else self.unit_id
