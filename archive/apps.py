"""The archive app; its ready() registers the archive's tools and the guest mover of its rows."""

from django.apps import AppConfig


class ArchiveConfig(AppConfig):
    name = "archive"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.services import guest_mover_register
        from archive.services import archive_guest_move
        from archive.tools import archive_source
        from tools.registry import tool_source_register

        guest_mover_register("archive")(archive_guest_move)
        tool_source_register(archive_source)
