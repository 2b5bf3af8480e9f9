"""Printed letters of a program transition, for members without an email address (reportlab).

One page per member, in their language: their name and address in the window position of a C5/6
envelope, their card number, balance and tier, the deadline, and what happens to their points if they
accept or not. `letters_pdf` writes any number of them into one file: one member's letter, or the
merged file for the mail house.
"""

import io

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.formats import date_format, number_format
from django.utils.html import escape
from django.utils.translation import gettext as _
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer

from campaigns.models import Transition
from campaigns.transitions import notice_context
from loyalty.models import Account


def _styles() -> dict[str, ParagraphStyle]:
    sheet = getSampleStyleSheet()
    body = ParagraphStyle("letter", parent=sheet["BodyText"], fontName="Helvetica", fontSize=10.5, leading=14)
    return {
        "body": body,
        "address": ParagraphStyle("address", parent=body, leading=13),
        "title": ParagraphStyle("title", parent=sheet["Heading2"], fontName="Helvetica-Bold", fontSize=14),
        "small": ParagraphStyle("small", parent=body, fontSize=8.5, leading=11),
    }


def _points(value: int) -> str:
    return number_format(value, force_grouping=True)


def _letter(transition: Transition, account: Account, styles) -> list:
    """One member's page, in their language."""
    member = account.member
    with translation.override(member.language or settings.LANGUAGE_CODE):
        context = notice_context(transition=transition, account=account)
        name = member.display_name
        address = [name, member.street, f"{member.postal_code} {member.city}".strip(), member.country]
        what_happens = render_to_string("email/_transition_what_happens.txt", context).strip()
        story = [
            Paragraph(f"<b>{escape(transition.program.name)}</b>", styles["body"]),
            Paragraph(escape(date_format(timezone.localdate(), "DATE_FORMAT")), styles["small"]),
            Spacer(1, 18 * mm),
        ]
        story += [Paragraph(escape(line), styles["address"]) for line in address if line]
        story.append(Spacer(1, 18 * mm))
        story.append(
            Paragraph(
                escape(
                    _("%(program)s is changing: what happens to your points") % {"program": transition.program.name}
                ),
                styles["title"],
            )
        )
        story.append(Paragraph(escape(_("Dear %(name)s,") % {"name": name}), styles["body"]))
        story.append(
            Paragraph(
                escape(
                    _("%(program)s is changing. To keep your points, please accept its new terms by %(date)s.")
                    % {"program": transition.program.name, "date": date_format(transition.accept_by, "DATE_FORMAT")}
                ),
                styles["body"],
            )
        )
        facts = _("Card %(number)s · balance %(points)s pts") % {
            "number": member.member_no,
            "points": _points(context["balance"]),
        }
        if account.tier:
            facts += " · " + _("tier %(tier)s") % {"tier": account.tier.name}
        story.append(Paragraph(f"<b>{escape(facts)}</b>", styles["body"]))
        for line in what_happens.splitlines():
            if line.strip():
                story.append(Paragraph(escape(line.strip()), styles["body"]))
        story.append(
            Paragraph(
                escape(
                    _("Accept online at %(url)s, or show this letter at any of our stores.")
                    % {"url": context["accept_url"]}
                ),
                styles["body"],
            )
        )
        story.append(Spacer(1, 8 * mm))
        story.append(
            Paragraph(
                escape(
                    _("A service letter about your %(program)s account: it is sent to every member.")
                    % {"program": transition.program.name}
                ),
                styles["small"],
            )
        )
    return story


def letters_pdf(*, transition: Transition, accounts: list[Account]) -> bytes:
    """One page per account (with member, tier and program loaded), in one PDF."""
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=22 * mm,
        rightMargin=20 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=str(transition),
        author=transition.program.name,
    )
    styles = _styles()
    story = []
    for index, account in enumerate(accounts):
        if index:
            story.append(PageBreak())
        story += _letter(transition, account, styles)
    if not story:
        story = [Paragraph(escape(_("No letter to print.")), styles["body"])]
    document.build(story)
    return buffer.getvalue()
