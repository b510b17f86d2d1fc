"""Forms of the Keys & endpoints page: field shapes only; the rules live in services."""

from __future__ import annotations

from django import forms

from byok.models import PLATFORM_KIND_CHOICES
from models_registry.models import Modality

INPUT_CHOICES = [
    (choice.value, choice.label) for choice in Modality if choice.value != Modality.TEXT.value
]


class KeyForm(forms.Form):
    provider = forms.ChoiceField(choices=PLATFORM_KIND_CHOICES)
    # render_value=False: a key is never sent back to the browser, not even after an error.
    api_key = forms.CharField(
        label="API key",
        max_length=1000,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        error_messages={"required": "Enter the API key."},
    )


class EndpointForm(forms.Form):
    name = forms.CharField(max_length=80, error_messages={"required": "Give the endpoint a name."})
    slug = forms.SlugField(
        label="Short name",
        max_length=30,
        required=False,
        help_text="Used in model ids; made from the name when empty.",
    )
    base_url = forms.CharField(
        label="Base URL",
        max_length=300,
        help_text="Its OpenAI-compatible API, e.g. https://llm.example.com/v1",
        error_messages={"required": "Enter the endpoint's URL."},
    )
    api_key = forms.CharField(
        label="API key (optional)",
        max_length=1000,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )


class ModelAddForm(forms.Form):
    provider_model_id = forms.CharField(
        label="Model id",
        max_length=150,
        error_messages={"required": "Enter the model's id."},
    )
    display_name = forms.CharField(label="Display name", max_length=120, required=False)
    input_modalities = forms.MultipleChoiceField(
        label="Also accepts",
        choices=INPUT_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    supports_tools = forms.BooleanField(label="Tools", required=False)
    supports_reasoning = forms.BooleanField(label="Reasoning", required=False)
    context_window = forms.IntegerField(label="Context window", min_value=1, required=False)
    max_output_tokens = forms.IntegerField(label="Max output", min_value=1, required=False)
