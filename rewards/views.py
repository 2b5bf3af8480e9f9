"""Staff pages of the reward catalogue (/staff/programs/<slug>/rewards/): stock, redemption counts, the
reward editor and the fulfilment queue. They call services and selectors only."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from loyalty.core.exceptions import ApplicationError
from loyalty.core.forms import add_application_error
from loyalty.views import ProgramStaffMixin
from rewards import selectors, services
from rewards.forms import CancelRedemptionForm, RewardForm, reward_initial
from rewards.models import Redemption, Reward

LOW_STOCK = 5


class RewardListView(ProgramStaffMixin, TemplateView):
    permission_required = ("members.view_staff_pages", "rewards.view_reward")
    template_name = "staff/rewards/reward_list.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            rewards=selectors.reward_summaries(program=self.program),
            awaiting=selectors.fulfilment_queue(program=self.program).count(),
            low_stock=LOW_STOCK,
            **kwargs,
        )


class RewardEditView(ProgramStaffMixin, TemplateView):
    """Add a reward (no pk) or change one."""

    template_name = "staff/rewards/reward_form.html"

    def get_permission_required(self):
        action = "change" if "pk" in self.kwargs else "add"
        return ("members.view_staff_pages", f"rewards.{action}_reward")

    def reward(self) -> Reward | None:
        if "pk" not in self.kwargs:
            return None
        return get_object_or_404(Reward, pk=self.kwargs["pk"], program=self.program)

    def get(self, request, slug, pk=None):
        reward = self.reward()
        initial = (
            reward_initial(reward) if reward else {"fulfilment": Reward.Fulfilment.VOUCHER, "voucher_valid_days": 90}
        )
        form = RewardForm(program=self.program, initial=initial)
        return self.render_to_response(self.get_context_data(form=form, reward=reward))

    def post(self, request, slug, pk=None):
        reward = self.reward()
        form = RewardForm(request.POST, request.FILES, program=self.program)
        if form.is_valid():
            data = dict(form.cleaned_data)
            if data["image"] is False:
                data["image"] = ""  # "clear" ticked
            elif not data["image"]:
                data.pop("image")  # no new file: keep the current image
            try:
                reward = services.reward_save(program=self.program, reward=reward, **data)
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                messages.success(request, _("“%(reward)s” is saved.") % {"reward": reward})
                return redirect("rewards:list", slug=self.program.slug)
        return self.render_to_response(self.get_context_data(form=form, reward=reward), status=400)


class FulfilmentView(ProgramStaffMixin, TemplateView):
    """Redemptions staff still have to ship, book or donate."""

    permission_required = ("members.view_staff_pages", "rewards.view_redemption")
    template_name = "staff/rewards/fulfilment.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            redemptions=selectors.fulfilment_queue(program=self.program)[:200],
            cancel_form=CancelRedemptionForm(),
            **kwargs,
        )


class RedemptionDecisionView(ProgramStaffMixin, View):
    permission_required = ("members.view_staff_pages", "rewards.fulfil_redemption")
    decision = "fulfil"

    def post(self, request, slug, pk):
        redemption = get_object_or_404(Redemption, pk=pk, program=self.program)
        try:
            if self.decision == "fulfil":
                services.redemption_fulfil(redemption=redemption, fulfilled_by=request.user)
                messages.success(request, _("Marked as fulfilled: %(reward)s.") % {"reward": redemption.reward})
            else:
                form = CancelRedemptionForm(request.POST)
                reason = form.cleaned_data["reason"] if form.is_valid() else ""
                services.redemption_cancel(redemption=redemption, reason=reason, cancelled_by=request.user)
                messages.success(
                    request,
                    _("Cancelled: %(points)s points are back on the member's balance.") % {"points": redemption.points},
                )
        except ApplicationError as error:
            messages.error(request, error.message)
        return redirect("rewards:fulfilment", slug=self.program.slug)
