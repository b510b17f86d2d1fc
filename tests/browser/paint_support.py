"""Helpers for the cache paint and offline tests: chats with versions, and waiting for the cache."""

from __future__ import annotations

import uuid
from typing import Any

from accounts.models import User
from chats.models import Chat, Message
from tests.chats.branching_support import say

# True once the cache holds the chat with at least `count` messages (the leader has synced).
CHAT_CACHED = """
async ([id, count]) => {
  const cache = window.veroCache && await window.veroCache.ready;
  const chat = cache && await cache.chatGet(id);
  return !!chat && Object.keys(chat.messages || {}).length >= count;
}
"""

# True once the service worker controls the page (its shell and static files are kept).
WORKER_CONTROLS = "() => navigator.serviceWorker.controller !== null"


def answer(chat: Chat, parent: Message, text: str) -> Message:
    """An assistant message under `parent`, rendered as a finished answer is."""
    message = say(chat, parent, text, role="assistant")
    Message.objects.filter(id=message.id).update(html=f"<p>{text}</p>")
    return message


def chat_with_versions(user: User, title: str) -> tuple[Chat, Message, Message, Message]:
    """A question with two answers, the second shown (the newest child)."""
    chat = Chat.objects.create(user=user, title=title)
    question = say(chat, None, f"{title}: the question")
    first = answer(chat, question, "answer one")
    second = answer(chat, question, "answer two")
    Message.objects.filter(id=question.id).update(selected_child_index=1)
    Chat.objects.filter(id=chat.id).update(tree_version=chat.tree_version + 1)
    return chat, question, first, second


def chat_with_answer(user: User, title: str, text: str) -> Chat:
    chat = Chat.objects.create(user=user, title=title)
    answer(chat, say(chat, None, f"{title}: the question"), text)
    return chat


def cache_wait(page: Any, chat_id: uuid.UUID, count: int = 2) -> None:
    page.wait_for_function(CHAT_CACHED, arg=[str(chat_id), count], timeout=15_000)
