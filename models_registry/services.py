"""Writes to the model registry."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from models_registry.models import Tier

REGISTRY_DATA = Path(__file__).resolve().parent / "data" / "registry.json"


@dataclass(frozen=True)
class SeedReport:
    created: int
    updated: int
    unchanged: int


def registry_seed(*, reset: bool = False, data_file: Path = REGISTRY_DATA) -> SeedReport:
    """Insert the versioned defaults; rows that already exist are left alone unless `reset`."""
    data: dict[str, Any] = json.loads(data_file.read_text())
    created = updated = unchanged = 0
    with transaction.atomic():
        for row in data["tiers"]:
            fields = {key: value for key, value in row.items() if key != "slug"}
            tier = Tier.objects.filter(slug=row["slug"]).first()
            if tier is None:
                Tier.objects.create(slug=row["slug"], **fields)
                created += 1
            elif reset:
                Tier.objects.filter(pk=tier.pk).update(**fields)
                updated += 1
            else:
                unchanged += 1
    return SeedReport(created=created, updated=updated, unchanged=unchanged)
