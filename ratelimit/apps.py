"""The ratelimit app; its ready() registers the guest mover of the buckets."""

from django.apps import AppConfig


class RatelimitConfig(AppConfig):
    name = "ratelimit"
    verbose_name = "Rate limits"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.services import guest_mover_register
        from ratelimit.services import ratelimit_guest_move

        guest_mover_register("ratelimit")(ratelimit_guest_move)
