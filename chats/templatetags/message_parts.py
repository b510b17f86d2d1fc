"""`{% message_parts message as shown %}`: an answer's blocks to show (`chats.parts_display`)."""

from __future__ import annotations

from django import template

from chats.models import Message
from chats.parts_display import PartShown, parts_display

register = template.Library()


@register.simple_tag
def message_parts(message: Message) -> list[PartShown]:
    return parts_display(
        parts=message.parts or [],
        message_html=message.html,
        streaming=message.status == Message.Status.STREAMING,
    )
