"""`manage.py seed_registry`: the versioned registry defaults, run at every start (idempotent)."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from models_registry.services import registry_seed


class Command(BaseCommand):
    help = (
        "Insert the default creators, providers, models and tiers from models_registry/data/"
        "registry.json, and refresh the rows no admin edited (idempotent; --reset overwrites "
        "admin edits too)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--reset", action="store_true", help="overwrite rows an admin edited")

    def handle(self, *args: Any, reset: bool, **options: Any) -> None:
        report = registry_seed(reset=reset)
        self.stdout.write(
            f"registry: {report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.kept_admin_edits} kept as an admin edited them"
        )
