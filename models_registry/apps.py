"""The model registry app; its ready() clears the registry cache when a registry row changes."""

from django.apps import AppConfig


class ModelsRegistryConfig(AppConfig):
    name = "models_registry"
    verbose_name = "Model registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from models_registry.cache import registry_cache_clear
        from models_registry.models import Creator, Model, ModelProvider, Provider, Tier

        for model in (Creator, Model, ModelProvider, Provider, Tier):
            post_save.connect(registry_cache_clear, sender=model, dispatch_uid=f"registry-{model}")
            post_delete.connect(
                registry_cache_clear, sender=model, dispatch_uid=f"registry-del-{model}"
            )
        m2m_changed.connect(
            registry_cache_clear, sender=Tier.allowed_models.through, dispatch_uid="registry-m2m"
        )
