"""Forms of the account pages: preferences, and allauth's add-address form, made strict."""

from allauth.account import forms as allauth_forms
from allauth.account.adapter import get_adapter
from django import forms

from accounts.models import User
from accounts.selectors import email_held_by_another_user


class PreferencesForm(forms.ModelForm[User]):
    class Meta:
        model = User
        fields = ["name", "occupation", "custom_instructions"]
        labels = {
            "name": "What should Vero call you?",
            "occupation": "What do you do?",
            "custom_instructions": "Anything else Vero should know or how it should answer?",
        }
        widgets = {"custom_instructions": forms.Textarea(attrs={"rows": 6})}


class AddEmailForm(allauth_forms.AddEmailForm):
    """allauth's form to add an address, refusing one that another account holds.

    allauth lets such an address through while it prevents enumeration (not to tell who has an
    account), but signing up with it says as much already, and making it primary then broke
    on the other account's unique email.
    """

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        assert self.user is not None  # allauth's view always passes the user
        if email_held_by_another_user(email=email, user=self.user):
            raise get_adapter().validation_error("email_taken")
        return super().clean_email()
