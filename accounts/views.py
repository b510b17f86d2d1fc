"""Account pages that allauth does not provide (preferences), and its address page, guarded."""

from __future__ import annotations

from allauth.account import views as allauth_views
from allauth.account.adapter import get_adapter
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.http import HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.forms import PreferencesForm
from accounts.selectors import actor_get, email_held_by_another_user
from accounts.services import actor_ensure, user_preferences_update
from vero.http import AuthedRequest, VeroRequest


@require_http_methods(["GET", "POST"])
def preferences(request: VeroRequest) -> HttpResponse:
    current = actor_get(request)
    if request.method == "POST":
        form = PreferencesForm(request.POST, instance=current)
        if form.is_valid():
            user_preferences_update(user=actor_ensure(request), **form.cleaned_data)
            messages.success(request, "Preferences saved.")
            if request.htmx:
                return render(request, "accounts/preferences.html#preferences-form", {"form": form})
            return redirect("preferences")
        status = 422
    else:
        form = PreferencesForm(instance=current)
        status = 200
    template = "accounts/preferences.html"
    if request.htmx:
        template += "#preferences-form"
    return render(request, template, {"form": form}, status=status)


@login_required
def email(request: AuthedRequest) -> HttpResponseBase:
    """allauth's /accounts/email/, refusing to make primary an address another account holds.

    allauth would set it as the account's email, which is unique: an IntegrityError (a 500)
    after it had already unmarked the old primary address.
    """
    if "action_primary" not in request.POST:
        return allauth_views.email(request)
    if email_held_by_another_user(email=request.POST.get("email", ""), user=request.user):
        return _email_taken(request)
    try:
        with transaction.atomic():  # all of allauth's writes, or none
            return allauth_views.email(request)
    except IntegrityError:  # the other account took it meanwhile
        return _email_taken(request)


def _email_taken(request: AuthedRequest) -> HttpResponseBase:
    messages.error(request, get_adapter().error_messages["email_taken"])
    return redirect("account_email")
