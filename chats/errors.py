"""What chats refuses, in the project's error vocabulary (`vero.errors`).

Every refusal of a tree operation is a conflict with the chat as it is now (often another
tab's change: the message was deleted, the answer is still streaming), so `TreeError` and its
subclasses answer 409; a send whose chat or parent is gone answers 404.
"""

from __future__ import annotations

from vero.errors import ErrorKind, VeroError


class TreeError(VeroError):
    """A tree operation was refused; nothing was changed."""

    code = "tree_error"
    kind = ErrorKind.CONFLICT
    default_message = "This change to the conversation is not possible."


class ChatNotFound(TreeError):
    code = "chat_not_found"
    default_message = "This chat no longer exists."


class MessageNotInChat(TreeError):
    code = "message_not_in_chat"
    default_message = "This message is not part of this chat (or no longer exists)."


class WrongRole(TreeError):
    code = "wrong_role"
    default_message = "This operation does not apply to this kind of message."


class SelectionOutOfRange(TreeError):
    code = "selection_out_of_range"
    default_message = "There is no version with that number."


class EmptyText(TreeError):
    code = "empty_text"
    default_message = "The edited message is empty."


class MessageStreaming(TreeError):
    code = "message_streaming"
    default_message = "This message is still being generated."


class ChatBusy(TreeError):
    code = "chat_busy"
    default_message = "Wait for the answer to finish (or stop it) before changing versions."


class NotRetryable(TreeError):
    code = "not_retryable"
    default_message = "Only a stopped or failed answer can be retried."


class SendRefusedError(VeroError):
    """A send that cannot go ahead; nothing was written."""

    code = "send_refused"


class SendChatGone(SendRefusedError):
    code = "send_chat_gone"
    kind = ErrorKind.NOT_FOUND
    default_message = "This chat no longer exists."


class SendParentGone(SendRefusedError):
    code = "send_parent_gone"
    kind = ErrorKind.NOT_FOUND
    default_message = (
        "The message you answered is not in this chat (it may have been deleted in another "
        "tab). Look at the chat again and send from there."
    )


class SendWhileStreaming(SendRefusedError):
    code = "send_while_streaming"
    kind = ErrorKind.CONFLICT
    default_message = "Wait for the answer to finish, or stop it, before sending."


class SettingsInvalid(VeroError):
    """A change to a chat's settings that cannot be used as it is; nothing was changed."""

    code = "settings_invalid"
    kind = ErrorKind.INVALID
    default_message = "These chat settings cannot be saved."
