from django.apps import AppConfig


class ChatsConfig(AppConfig):
    name = "chats"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.services import guest_mover_register
        from chats.services import chats_move_to_account

        guest_mover_register("chats")(chats_move_to_account)

        from chats.attachment_services import attachments_move_to_account

        guest_mover_register("attachments")(attachments_move_to_account)

        from chats.tools import chat_tree_source
        from tools.registry import tool_source_register

        tool_source_register(chat_tree_source)
