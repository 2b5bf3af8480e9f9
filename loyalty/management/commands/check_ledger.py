from django.core.management.base import BaseCommand, CommandError

from loyalty.models import Program
from loyalty.selectors import ledger_breaches


class Command(BaseCommand):
    help = "Check every ledger invariant (DESIGN.md); exit 1 and list the breaches if any fails."

    def add_arguments(self, parser):
        parser.add_argument("--program", help="Check one program (its slug) instead of all.")

    def handle(self, *args, program=None, **options):
        scope = None
        if program:
            scope = Program.objects.filter(slug=program).first()
            if scope is None:
                raise CommandError(f"No program with slug {program!r}.")
        breaches = ledger_breaches(program=scope)
        if breaches:
            for breach in breaches:
                self.stderr.write(str(breach))
            raise CommandError(f"{len(breaches)} ledger invariant breach(es).", returncode=1)
        self.stdout.write(self.style.SUCCESS("Ledger sound: every invariant holds."))
