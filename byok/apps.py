"""The byok app; its ready() plugs users' own models into the resolver and registers the
guest mover of their keys, endpoints and models."""

from django.apps import AppConfig


class ByokConfig(AppConfig):
    name = "byok"
    verbose_name = "Your own keys (BYOK)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.services import guest_mover_register
        from byok.hook import ByokResolverHook
        from byok.services import byok_guest_move
        from models_registry.resolver import byok_hook_set

        byok_hook_set(ByokResolverHook())
        guest_mover_register("byok")(byok_guest_move)
