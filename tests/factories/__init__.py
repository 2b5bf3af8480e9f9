"""factory-boy factories, one per model. Users created here have a verified primary email, as allauth expects."""

import factory
from allauth.account.models import EmailAddress
from factory.django import DjangoModelFactory

from members.models import StaffProfile, Store, User


class StoreFactory(DjangoModelFactory):
    class Meta:
        model = Store
        django_get_or_create = ["code"]

    code = factory.Sequence(lambda n: f"st-{n:03d}")
    name = factory.Sequence(lambda n: f"Store {n}")
    region = "Brussels"
    city = "Brussels"
    postal_code = "1000"
    street = factory.Sequence(lambda n: f"Rue Neuve {n}")


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password("correct-Horse-9")

    @factory.post_generation
    def email_verified(obj, create, extracted, **kwargs):
        if create:
            EmailAddress.objects.create(user=obj, email=obj.email, primary=True, verified=extracted is not False)


class StaffProfileFactory(DjangoModelFactory):
    class Meta:
        model = StaffProfile

    user = factory.SubFactory(UserFactory)
    store = factory.SubFactory(StoreFactory)
