"""`manage.py tombstones_prune`: delete tombstones older than SYNC_TOMBSTONE_RETENTION_DAYS
(each server's reaper also does, hourly)."""

from typing import Any

from django.core.management.base import BaseCommand

from chats.tombstone_services import tombstones_prune


class Command(BaseCommand):
    help = (
        "Delete the tombstones of deleted chats and messages older than "
        "SYNC_TOMBSTONE_RETENTION_DAYS: browser caches older than that start over anyway."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"{tombstones_prune()} tombstones pruned")
