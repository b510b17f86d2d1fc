from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

REASONING_EFFORTS = [("", "Default"), ("low", "Low"), ("medium", "Medium"), ("high", "High")]


class SendForm(forms.Form):
    model = forms.CharField(max_length=200, error_messages={"required": "Choose a model."})
    parent = forms.UUIDField(required=False)
    reasoning_effort = forms.ChoiceField(choices=REASONING_EFFORTS, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = settings.MAX_MESSAGE_LENGTH  # read per form, so tests and admins can change it
        self.fields["text"] = forms.CharField(
            max_length=limit,
            error_messages={
                "required": "Write a message first.",
                "max_length": f"Your message is too long: the limit is {limit:,} characters.",
            },
        )


class RenameForm(forms.Form):
    title = forms.CharField(max_length=200, error_messages={"required": "A title is needed."})
