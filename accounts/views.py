"""Account pages that allauth does not provide: preferences."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.forms import PreferencesForm
from accounts.services import actor_ensure, actor_get, user_preferences_update
from vero.http import VeroRequest


@require_http_methods(["GET", "POST"])
def preferences(request: VeroRequest) -> HttpResponse:
    current = actor_get(request)
    if request.method == "POST":
        form = PreferencesForm(request.POST, instance=current)
        if form.is_valid():
            user_preferences_update(user=actor_ensure(request), **form.cleaned_data)
            messages.success(request, "Preferences saved.")
            if request.htmx:  # type: ignore[attr-defined]
                return render(request, "accounts/preferences.html#preferences-form", {"form": form})
            return redirect("preferences")
        status = 422
    else:
        form = PreferencesForm(instance=current)
        status = 200
    template = "accounts/preferences.html"
    if request.htmx:  # type: ignore[attr-defined]
        template += "#preferences-form"
    return render(request, template, {"form": form}, status=status)
