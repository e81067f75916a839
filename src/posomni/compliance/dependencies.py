"""Route dependencies of the compliance domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends

from posomni.kit.time import utcnow


def decision_time() -> datetime:
    """The instant a check is decided at. A dependency, so tests can fix the clock with
    `app.dependency_overrides[decision_time]` and every rule (store-local date, hours) follows."""
    return utcnow()


Now = Annotated[datetime, Depends(decision_time)]
