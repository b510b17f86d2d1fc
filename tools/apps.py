from django.apps import AppConfig


class ToolsConfig(AppConfig):
    name = "tools"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tools.builtins import builtin_source
        from tools.registry import tool_source_register

        tool_source_register(builtin_source)
