from django import forms

from accounts.models import User


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
