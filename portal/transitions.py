"""Program transitions seen by members (/me/transitions/<pk>/: read the new terms and accept) and by
clerks (accept at the desk for the customer in front of them). The work is in campaigns.transitions."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views import View

from campaigns import transitions
from loyalty.core.exceptions import ApplicationError
from portal.desk import DeskMixin
from portal.me import MemberMixin


class TransitionAcceptView(MemberMixin, View):
    """The new terms, what happens to the member's points either way, and the acceptance."""

    def found_or_404(self, pk: int):
        found = transitions.member_transition(member=self.member, pk=pk)
        if found is None:  # another program's, closed, or not announced yet: nothing to show
            raise Http404(_("There are no new terms to accept here."))
        return found

    def get(self, request, pk):
        return self.page(self.found_or_404(pk))

    def post(self, request, pk):
        found = self.found_or_404(pk)
        if not request.POST.get("agree"):
            return self.page(
                found, error=_("Tick the box to say you have read the new terms, then accept."), status=400
            )
        try:
            transitions.transition_accept(transition=found.transition, account=found.account, channel="online")
        except ApplicationError as error:
            return self.page(found, error=error.message, status=400)
        messages.success(
            request,
            _("Thank you: you accepted the new terms of %(program)s.") % {"program": found.transition.program.name},
        )
        return redirect("me:dashboard")

    def page(self, found, *, error: str = "", status: int = 200):
        return render(
            self.request, "me/transition.html", {"found": found, "member": self.member, "error": error}, status=status
        )


class DeskTransitionAcceptView(DeskMixin, View):
    """The clerk records that the customer accepted the new terms (channel desk, the clerk and the store)."""

    def post(self, request, member_no, pk):
        member = self.member_or_404(member_no)
        found = next(
            (
                f
                for f in transitions.member_transitions(
                    member=member, programs=list(self.store.programs.values_list("pk", flat=True)), with_rewards=False
                )
                if f.transition.pk == pk
            ),
            None,
        )
        if found is None:  # a program this store does not run, or no open transition
            raise Http404(_("No new terms to accept for this member in your store's programs."))
        try:
            transitions.transition_accept(
                transition=found.transition,
                account=found.account,
                channel="desk",
                recorded_by=request.user,
                store=self.store,
            )
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request,
                _("Recorded: %(name)s accepted the new terms of %(program)s.")
                % {"name": member.display_name, "program": found.transition.program.name},
            )
        return redirect("desk:member", member_no=member.member_no)
