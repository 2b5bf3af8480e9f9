from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.utils.translation import gettext_lazy as _

from loyalty.models import ActivityType
from members.models import MemberType

CLAIM_TYPES = [
    (ActivityType.TRAINING_HOURS, _("Training hours")),
    (ActivityType.CERTIFICATION, _("Certification")),
    (ActivityType.REVIEW, _("Review")),
    (ActivityType.EVENT_ATTENDANCE, _("Event attendance")),
]


def _member_type_choices():
    return [(t.code, t.name) for t in MemberType.objects.filter(is_active=True)]


class EnrolForm(forms.Form):
    """The counter's short form: a name, a way to reach the member, consent and terms. What a valid
    enrolment needs is checked by loyalty.services.member_enrol, which names the field to fix."""

    program = forms.ModelChoiceField(queryset=None, label=_("Program"), empty_label=None)
    first_name = forms.CharField(label=_("First name"), max_length=100, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=100, required=False)
    company = forms.CharField(label=_("Company"), max_length=200, required=False)
    phone = forms.CharField(
        label=_("Phone"),
        max_length=32,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "off", "inputmode": "tel"}),
    )
    email = forms.EmailField(label=_("Email"), required=False, widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    postal_code = forms.CharField(label=_("Postal code"), max_length=20, required=False)
    member_type = forms.ChoiceField(label=_("Member type"), choices=_member_type_choices)
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)
    referral_code = forms.CharField(label=_("Referral code"), max_length=12, required=False)
    invitation_code = forms.CharField(label=_("Invitation code"), max_length=16, required=False)
    marketing_consent = forms.BooleanField(label=_("Agrees to receive offers by email"), required=False)
    accept_terms = forms.BooleanField(label=_("Has read and accepts the program terms"), required=False)

    def __init__(self, *args, programs, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["program"].queryset = programs


class RedeemForm(forms.Form):
    """The confirmation of a redemption; its request id becomes the idempotency key (a double click redeems once)."""

    request_id = forms.CharField(widget=forms.HiddenInput, max_length=64)


class AccountChoiceForm(forms.Form):
    """A form about one of the member's accounts, chosen by its program."""

    account = forms.TypedChoiceField(label=_("Program"), coerce=int)

    def __init__(self, *args, accounts, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].choices = [(a.pk, a.program.name) for a in accounts]


class DeskPurchaseForm(AccountChoiceForm):
    amount = forms.DecimalField(label=_("Amount"), max_digits=12, decimal_places=2, min_value=0.01)
    receipt_number = forms.CharField(label=_("Receipt number"), max_length=64)
    request_id = forms.CharField(widget=forms.HiddenInput)


class DeskActivityForm(AccountChoiceForm):
    activity_type = forms.ChoiceField(
        label=_("Activity"),
        choices=[
            (ActivityType.EVENT_ATTENDANCE, _("Event attendance")),
            (ActivityType.CHECK_IN, _("Check-in")),
            (ActivityType.TRAINING_HOURS, _("Training hours")),
            (ActivityType.CUSTOM_CODE, _("Custom code")),
        ],
    )
    quantity = forms.DecimalField(label=_("Quantity"), max_digits=8, decimal_places=2, min_value=0.01, initial=1)
    code = forms.SlugField(label=_("Code"), max_length=40, required=False)
    request_id = forms.CharField(widget=forms.HiddenInput)


class DeskRedeemForm(forms.Form):
    """Redeem a reward for the customer at the counter: one of the rewards they can redeem now."""

    reward = forms.TypedChoiceField(label=_("Reward"), coerce=int)
    request_id = forms.CharField(widget=forms.HiddenInput)

    def __init__(self, *args, offers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reward"].choices = [
            (o.reward.pk, f"{o.reward.name} · {o.reward.points_cost} {o.reward.program.points_name}") for o in offers
        ]


class VoucherCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Voucher code"),
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}),
        help_text=_("12 letters and digits, as on the member's screen or print-out; dashes and spaces are ignored."),
    )


class ClaimForm(AccountChoiceForm):
    """A member's claim for a non-spend activity, with the evidence staff will check."""

    activity_type = forms.ChoiceField(label=_("What did you do?"), choices=CLAIM_TYPES)
    quantity = forms.DecimalField(
        label=_("Hours or count"), max_digits=8, decimal_places=2, min_value=0.25, max_value=1000, initial=1
    )
    occurred_on = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    description = forms.CharField(label=_("Description"), max_length=200)
    evidence = forms.FileField(
        label=_("Evidence"),
        help_text=_("A certificate, attendance sheet or screenshot: PDF, JPEG or PNG, up to 5 MB."),
    )
    request_id = forms.CharField(widget=forms.HiddenInput)


class ProfileForm(forms.Form):
    email = forms.EmailField(label=_("Email"))
    phone = forms.CharField(
        label=_("Phone"), max_length=32, required=False, widget=forms.TextInput(attrs={"type": "tel"})
    )
    street = forms.CharField(label=_("Street"), max_length=200, required=False)
    postal_code = forms.CharField(label=_("Postal code"), max_length=20, required=False)
    city = forms.CharField(label=_("City"), max_length=100, required=False)
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)
    marketing_consent = forms.BooleanField(label=_("Send me offers by email"), required=False)


class JoinForm(forms.Form):
    """Online enrolment for a signed-in user who is not a member yet."""

    program = forms.ModelChoiceField(queryset=None, label=_("Program"), empty_label=None)
    first_name = forms.CharField(label=_("First name"), max_length=100)
    last_name = forms.CharField(label=_("Last name"), max_length=100)
    phone = forms.CharField(
        label=_("Phone"), max_length=32, required=False, widget=forms.TextInput(attrs={"type": "tel"})
    )
    member_type = forms.ChoiceField(label=_("I am a"), choices=_member_type_choices)
    invitation_code = forms.CharField(label=_("Invitation code"), max_length=16, required=False)
    referral_code = forms.CharField(label=_("Referral code"), max_length=12, required=False)
    marketing_consent = forms.BooleanField(label=_("Send me offers by email"), required=False)
    accept_terms = forms.BooleanField(label=_("I accept the program terms"), required=False)

    def __init__(self, *args, programs, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["program"].queryset = programs


class ActivationForm(forms.Form):
    password1 = forms.CharField(
        label=_("Choose a password"), widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label=_("Type it again"), widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", _("The two passwords differ."))
        elif data.get("password1"):
            try:
                password_validation.validate_password(data["password1"])
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return data
