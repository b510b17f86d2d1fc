"""`manage.py sync_catalog`: record what OpenRouter or LiteLLM knows of models in the
catalog, from which admins promote models."""

import json
import urllib.request
from argparse import ArgumentParser, ArgumentTypeError
from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from models_registry.services import SyncReport, catalog_sync_litellm, catalog_sync_openrouter

OPENROUTER_MODELS_URL = "https://openrouter.ai/api/v1/models"


class Command(BaseCommand):
    help = (
        "Record what a catalog offers (OpenRouter's model list or LiteLLM's bundled model map) "
        "in the provider catalog, for admins to promote. --file works offline."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--source", choices=["openrouter", "litellm"], required=True)
        parser.add_argument(
            "--file",
            type=Path,
            help="read this JSON file instead (OpenRouter's /api/v1/models answer, or a "
            "LiteLLM model map); without it OpenRouter is fetched and LiteLLM's bundled map read",
        )
        parser.add_argument(
            "--today",
            type=_iso_date,
            help="LiteLLM: leave out models deprecated before this date (YYYY-MM-DD); "
            "default: today",
        )

    def handle(
        self, *args: Any, source: str, file: Path | None, today: date | None, **options: Any
    ) -> None:
        payload = self._load(source=source, file=file)
        report: SyncReport
        if source == "openrouter":
            report = catalog_sync_openrouter(payload=payload)
        else:
            report = catalog_sync_litellm(model_map=payload, today=today)
        skipped = len(report.skipped)
        self.stdout.write(
            f"catalog ({source}): {report.created} new, {report.updated} refreshed"
            + (f", {skipped} skipped (no provider of that kind)" if skipped else "")
        )

    def _load(self, *, source: str, file: Path | None) -> dict[str, Any]:
        try:
            if file is not None:
                data: dict[str, Any] = json.loads(file.read_text())
                return data
            if source == "litellm":
                from models_registry.llm import litellm_model_map

                return litellm_model_map()
            request = urllib.request.Request(
                OPENROUTER_MODELS_URL, headers={"Accept": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                fetched: dict[str, Any] = json.loads(response.read())
                return fetched
        except (OSError, ValueError) as error:
            raise CommandError(f"Cannot read the {source} catalog: {error}") from error


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from error
