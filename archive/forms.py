"""What the archive's pages post, checked before anything is written."""

from __future__ import annotations

from django import forms

from archive.models import TITLE_MAX_LENGTH
from archive.services import BODY_MAX_LENGTH, KIND_MAX_LENGTH


class EntryForm(forms.Form):
    title = forms.CharField(
        max_length=TITLE_MAX_LENGTH,
        error_messages={
            "required": "An entry needs a title.",
            "max_length": f"The title is too long: at most {TITLE_MAX_LENGTH} characters.",
        },
    )
    body = forms.CharField(
        required=False,
        strip=False,
        max_length=BODY_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 14}),
        error_messages={
            "max_length": f"The text is too long: at most {BODY_MAX_LENGTH:,} characters."
        },
    )
    tags = forms.CharField(
        required=False,
        max_length=1200,
        help_text="Separated by commas.",
        error_messages={"max_length": "Too many tags."},
    )

    def clean_tags(self) -> list[str]:
        return [tag for tag in self.cleaned_data["tags"].split(",") if tag.strip()]


class LinkForm(forms.Form):
    target = forms.SlugField(
        max_length=120, error_messages={"required": "Say which entry to link to (its slug)."}
    )
    kind = forms.CharField(max_length=KIND_MAX_LENGTH, required=False, initial="related")
    bidirectional = forms.BooleanField(required=False, initial=True)


class PinForm(forms.Form):
    entry = forms.UUIDField(
        error_messages={"required": "Choose an entry to pin.", "invalid": "Choose an entry to pin."}
    )
