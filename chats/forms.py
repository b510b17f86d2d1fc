"""What the chat pages post, checked before anything is written or sent to a provider.

Every path that takes a message's text (send, each kind of edit) builds its field with
`message_text_field`, and every path that names a model with `_model_field`: one rule each,
so an edit obeys the same limits as a send.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.conf import settings

from tools.registry import TOOL_GROUPS

REASONING_EFFORTS = [("", "Default"), ("low", "Low"), ("medium", "Medium"), ("high", "High")]
EDIT_MODES = [("version", "version"), ("in_place", "in place"), ("fork", "fork")]
MODEL_ID_MAX_LENGTH = 200  # Message.model_id's column


def message_text_field(*, required_message: str) -> forms.CharField:
    """A message's text: required, at most `MAX_MESSAGE_LENGTH` characters."""
    limit = settings.MAX_MESSAGE_LENGTH  # read per form, so tests and admins can change it
    return forms.CharField(
        max_length=limit,
        error_messages={
            "required": required_message,
            "max_length": f"Your message is too long: the limit is {limit:,} characters.",
        },
    )


def _model_field(*, required: bool) -> forms.CharField:
    return forms.CharField(
        max_length=MODEL_ID_MAX_LENGTH,
        required=required,
        error_messages={"required": "Choose a model.", "max_length": "This model does not exist."},
    )


def tree_version_field() -> forms.IntegerField:
    """The chat's tree version the page showed (absent: unknown, so treated as stale)."""
    return forms.IntegerField(required=False, min_value=0)


class UUIDListField(forms.Field):
    """Repeated ids of one field, each once, in the order given; at most `limit`."""

    widget = forms.MultipleHiddenInput

    def __init__(self, *, limit: int, invalid: str, too_many: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limit, self.invalid, self.too_many = limit, invalid, too_many

    def to_python(self, value: Any) -> tuple[uuid.UUID, ...]:
        ids: list[uuid.UUID] = []
        for item in value or []:
            try:
                parsed = uuid.UUID(str(item))
            except ValueError as error:
                raise forms.ValidationError(self.invalid) from error
            if parsed not in ids:
                ids.append(parsed)
        if len(ids) > self.limit:
            raise forms.ValidationError(self.too_many.format(limit=self.limit))
        return tuple(ids)


def pins_field(**kwargs: Any) -> UUIDListField:
    """Archive entries staged on a new chat's page (others' are ignored by the send; an id
    that is not one refuses the send)."""
    return UUIDListField(
        limit=50, invalid="A pinned entry is not valid.", too_many="Pin at most {limit} entries.",
        **kwargs,
    )  # fmt: skip


def attachments_field(**kwargs: Any) -> UUIDListField:
    """The message's attachments. Whose they are, how many and whether the model reads them
    is the send's to check (`chats.message_files.attachments_check`); the limit here, far above
    any setting, only bounds what is parsed."""
    return UUIDListField(
        limit=100, invalid="An attachment is not valid.", too_many="Attach at most {limit} files.",
        **kwargs,
    )  # fmt: skip


class SendForm(forms.Form):
    model = _model_field(required=True)
    parent = forms.UUIDField(required=False)
    version = tree_version_field()
    reasoning_effort = forms.ChoiceField(choices=REASONING_EFFORTS, required=False)
    pin = pins_field(required=False)
    attachments = attachments_field(required=False)
    # A new chat's tools choice, staged in its composer (`tools_staged`: the person chose; an
    # empty `tools` then allows no group, whereas nothing staged allows them all).
    tools = forms.MultipleChoiceField(
        choices=list(TOOL_GROUPS.items()),
        required=False,
        error_messages={"invalid_choice": "Unknown tool group %(value)s."},
    )
    tools_staged = forms.BooleanField(required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["text"] = message_text_field(required_message="Write a message first.")


class EditForm(forms.Form):
    """An edit of a message: a new version, in place, or in a fork; `model` answers it."""

    mode = forms.ChoiceField(choices=EDIT_MODES, initial="version")
    model = _model_field(required=False)
    attachments = attachments_field(required=False)  # added to the question's own

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["text"] = message_text_field(required_message="The edited message is empty.")


class RegenerateForm(forms.Form):
    model = _model_field(required=False)


class RenameForm(forms.Form):
    title = forms.CharField(max_length=200, error_messages={"required": "A title is needed."})
