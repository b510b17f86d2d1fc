"""What every app's forms share: the one sentence a refused form answers with."""

from __future__ import annotations

from django import forms


def form_first_error(form: forms.BaseForm) -> str:
    """Return the first error of an invalid form, the one a page shows (field order first)."""
    return str(next(iter(form.errors.values()))[0])
