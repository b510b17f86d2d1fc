"""The versions of a message: its siblings (the children of its parent), without the tree.

A version switcher, compare and a single message's partial need only these, in creation order
(the order selections index), read in one narrow query whatever the chat's size.
"""

from __future__ import annotations

import uuid

from django.db import connection

from chats.models import Chat, Message

# A first message's versions are the chat's first messages: the first (lowest seq) message of
# each root branch, through the chat's few root branches.
ROOTS_SQL = """
SELECT first.id, first.created_at
FROM chats_branch b
CROSS JOIN LATERAL (
    SELECT id, created_at FROM chats_message WHERE branch_id = b.id ORDER BY seq LIMIT 1
) first
WHERE b.chat_id = %s AND b.parent_branch_id IS NULL
ORDER BY first.created_at, first.id
"""


def message_versions(*, chat: Chat, message: Message) -> list[uuid.UUID]:
    """The ids of `message` and its sibling versions, oldest first."""
    if message.parent_id is None:
        with connection.cursor() as cursor:
            cursor.execute(ROOTS_SQL, [chat.id])
            return [row[0] for row in cursor.fetchall()]
    return list(
        Message.objects.filter(chat_id=chat.id, parent_id=message.parent_id)
        .order_by("created_at", "id")
        .values_list("id", flat=True)
    )
