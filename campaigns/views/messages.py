"""Staff pages: messages (/staff/programs/<slug>/messages/), and the public unsubscribe page.

They call campaigns.messaging only: its services to write, its reads for counts, the send log and the
member to preview for.
"""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from campaigns import messaging
from campaigns.models import Campaign, Message, MessageSend
from loyalty.core.exceptions import ApplicationError
from loyalty.core.forms import add_application_error
from loyalty.views import ProgramStaffMixin

LOG_PAGE_SIZE = 50
LIST_SIZE = 100  # the latest messages; each one's log is counted
VIEW = ("members.view_staff_pages", "campaigns.view_message")


class MessageForm(forms.Form):
    """A message's name, kind and campaign, and a subject and body per language (subject_<lang>, body_<lang>)."""

    name = forms.CharField(
        label=gettext_lazy("Name"), max_length=120, help_text=gettext_lazy("For staff only; members never see it.")
    )
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=Message.Kind.choices)
    campaign = forms.ModelChoiceField(
        label=gettext_lazy("Campaign"),
        queryset=Campaign.objects.none(),
        required=False,
        help_text=gettext_lazy(
            "A marketing message goes to the campaign's members who consented, never to its control group."
        ),
    )

    def __init__(self, *args, program, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].queryset = Campaign.objects.filter(program=program).order_by("-starts_on", "name")
        placeholders = ", ".join(f"{{{name}}}" for name in messaging.PLACEHOLDERS)
        for code, _name in settings.LANGUAGES:
            self.fields[f"subject_{code}"] = forms.CharField(
                label=gettext_lazy("Subject"), max_length=160, required=False
            )
            self.fields[f"body_{code}"] = forms.CharField(
                label=gettext_lazy("Body"),
                required=False,
                widget=forms.Textarea(attrs={"rows": 10}),
                help_text=_("Personal facts in braces: %(placeholders)s.") % {"placeholders": placeholders},
            )

    def languages(self) -> list[dict]:
        """One fieldset per language, for the template."""
        return [
            {"code": code, "name": name, "subject": self[f"subject_{code}"], "body": self[f"body_{code}"]}
            for code, name in settings.LANGUAGES
        ]

    def texts(self) -> dict[str, tuple[str, str]]:
        data = self.cleaned_data
        return {code: (data[f"subject_{code}"], data[f"body_{code}"]) for code, _name in settings.LANGUAGES}


def _initial(message: Message) -> dict:
    initial = {"name": message.name, "kind": message.kind, "campaign": message.campaign_id}
    for text in message.texts.all():
        initial[f"subject_{text.language}"], initial[f"body_{text.language}"] = text.subject, text.body
    return initial


def _add_errors(form: forms.Form, error: ApplicationError) -> None:
    """Every field the service named, else its one message at the top of the form."""
    fields = {name: problems for name, problems in error.extra.get("fields", {}).items() if name in form.fields}
    if not fields:
        add_application_error(form, error)
    for name, problems in fields.items():
        for problem in problems:
            form.add_error(name, problem)


class MessageMixin(ProgramStaffMixin):
    permission_required = VIEW

    def message(self) -> Message:
        return get_object_or_404(
            Message.objects.select_related("campaign", "program"), pk=self.kwargs["pk"], program=self.program
        )


class MessageListView(MessageMixin, TemplateView):
    """The program's messages, with their send log counted per status."""

    template_name = "staff/campaigns/messages/list.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            message_list=messaging.program_messages(program=self.program)[:LIST_SIZE], **kwargs
        )


class MessageEditView(MessageMixin, TemplateView):
    """Write a message (no pk; ?campaign=<pk> picks its campaign) or change a draft."""

    template_name = "staff/campaigns/messages/form.html"

    def get_permission_required(self):
        action = "change" if "pk" in self.kwargs else "add"
        return ("members.view_staff_pages", f"campaigns.{action}_message")

    def current(self) -> Message | None:
        return self.message() if "pk" in self.kwargs else None

    def get(self, request, slug, pk=None):
        message = self.current()
        if message is not None:
            initial = _initial(message)
        else:
            campaign = Campaign.objects.filter(program=self.program, pk=_int(request.GET.get("campaign"))).first()
            kind = Message.Kind.MARKETING if campaign else Message.Kind.SERVICE
            initial = {"campaign": campaign.pk if campaign else None, "kind": kind}
        form = MessageForm(program=self.program, initial=initial)
        return self.render_to_response(self.get_context_data(form=form, message=message))

    def post(self, request, slug, pk=None):
        message = self.current()
        form = MessageForm(request.POST, program=self.program)
        if form.is_valid():
            data = form.cleaned_data
            try:
                message = messaging.message_save(
                    program=self.program,
                    campaign=data["campaign"],
                    message=message,
                    kind=data["kind"],
                    name=data["name"],
                    texts=form.texts(),
                    created_by=request.user,
                )
            except ApplicationError as error:
                _add_errors(form, error)
            else:
                messages.success(
                    request, _("“%(message)s” is saved. Preview it for a member before sending.") % {"message": message}
                )
                return redirect("campaigns:message_edit", slug=self.program.slug, pk=message.pk)
        return self.render_to_response(self.get_context_data(form=form, message=message), status=400)

    def get_context_data(self, **kwargs):
        message = kwargs.get("message")
        if message is not None:
            kwargs["counts"] = messaging.message_send_counts(message=message)
            kwargs["preview_account"] = messaging.preview_account(message=message)
        return super().get_context_data(**kwargs)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class MessagePreviewView(MessageMixin, View):
    """The message as one member would get it (?member=<member number>; default: the campaign's first
    member). An htmx fragment, or a page of its own. Records that the message was previewed."""

    def get(self, request, slug, pk):
        message = self.message()
        member_no = request.GET.get("member", "").strip()
        account = messaging.preview_account(message=message, member_no=member_no)
        rendered, error, status = None, None, 200
        if account is None:
            status = 400
            error = (
                _("No member %(member_no)s in this program. Check the card number.") % {"member_no": member_no}
                if member_no
                else _("The program has no member to preview with yet.")
            )
        else:
            try:
                rendered = messaging.message_preview(message=message, account=account)
            except ApplicationError as error_:
                error, status = error_.message, 400
        template = (
            "staff/campaigns/messages/_preview.html" if request.htmx else "staff/campaigns/messages/preview_page.html"
        )
        context = {
            "program": self.program,
            "message": message,
            "account": account,
            "member_no": member_no or (account.member.member_no if account else ""),
            "rendered": rendered,
            "error": error,
        }
        return render(request, template, context, status=status)


class MessageSendView(MessageMixin, View):
    """Start sending (POST); for a message whose sending stopped halfway, take it up again."""

    permission_required = ("members.view_staff_pages", "campaigns.view_message", "campaigns.launch_campaign")

    def post(self, request, slug, pk):
        message = self.message()
        try:
            if message.status == Message.Status.SENDING:
                messaging.message_send_resume(message=message)
                messages.success(request, _("Sending “%(message)s” again where it stopped.") % {"message": message})
            else:
                messaging.message_send_start(message=message, started_by=request.user)
                messages.success(
                    request,
                    _("“%(message)s” is being sent. This log fills in as the emails go out.") % {"message": message},
                )
        except ApplicationError as error:
            messages.error(request, error.message)
            return redirect("campaigns:message_edit", slug=self.program.slug, pk=message.pk)
        return redirect("campaigns:message_log", slug=self.program.slug, pk=message.pk)


class MessageLogView(MessageMixin, TemplateView):
    """One row per member: sent, failed (and why), not sent (and why), or still queued."""

    template_name = "staff/campaigns/messages/log.html"

    def get_context_data(self, **kwargs):
        message = self.message()
        status = self.request.GET.get("status", "")
        if status not in MessageSend.Status.values:
            status = ""
        log = messaging.message_send_log(message=message, status=status)
        page = Paginator(log, LOG_PAGE_SIZE).get_page(self.request.GET.get("page"))
        return super().get_context_data(
            message=message,
            counts=messaging.message_send_counts(message=message),
            statuses=MessageSend.Status.choices,
            status=status,
            page=page,
            query=f"status={status}" if status else "",
            **kwargs,
        )


class UnsubscribeView(View):
    """The link at the foot of every marketing email: no sign-in needed. GET asks, POST unsubscribes."""

    def get(self, request, token):
        member = messaging.member_for_unsubscribe(token)
        if member is None:
            return render(request, "campaigns/unsubscribe_invalid.html", status=400)
        return render(request, "campaigns/unsubscribe.html", {"member": member, "done": False})

    def post(self, request, token):
        try:
            member = messaging.unsubscribe(token=token)
        except ApplicationError:
            return render(request, "campaigns/unsubscribe_invalid.html", status=400)
        return render(request, "campaigns/unsubscribe.html", {"member": member, "done": True})
