from typing import Any

from django.core.management.base import BaseCommand

from chats.generation import messages_reap


class Command(BaseCommand):
    help = "Mark answers left `streaming` by a stopped server (stale heartbeat) as interrupted."

    def handle(self, *args: Any, **options: Any) -> None:
        reaped = messages_reap()
        self.stdout.write(f"reaper: {reaped} interrupted answer(s)")
