"""`manage.py reencrypt_secrets`: move every stored secret to the current encryption key."""

from typing import Any

from django.core.management.base import BaseCommand

from vero.lib.secrets import secret_current_key_id, secrets_reencrypt_all


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret (provider keys, BYOK keys) with the first key of "
        "SECRETS_ENCRYPTION_KEYS; run it after adding a new key, before removing the old one."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        changed = secrets_reencrypt_all()
        self.stdout.write(f"secrets: {changed} re-encrypted with key {secret_current_key_id()}")
