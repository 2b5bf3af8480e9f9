from django.core.management.base import BaseCommand, CommandError

from loyalty.core.exceptions import ApplicationError
from members.models import Store
from members.services import api_key_create


class Command(BaseCommand):
    help = "Create a point-of-sale API key for a store and print it once (only its hash is kept)."

    def add_arguments(self, parser):
        parser.add_argument("--store", required=True, help="Store code, e.g. BRU-01.")
        parser.add_argument("--name", required=True, help="What uses the key, e.g. 'Till 2'.")

    def handle(self, *args, store: str, name: str, **options):
        found = Store.objects.filter(code=store).first()
        if found is None:
            raise CommandError(
                f"No store with code {store!r}. Codes: {', '.join(Store.objects.values_list('code', flat=True))}"
            )
        try:
            api_key, key = api_key_create(store=found, name=name)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stderr.write(f"Key {api_key.prefix} for {found} ({name}). Store it now: it is not shown again.")
        self.stdout.write(key)
