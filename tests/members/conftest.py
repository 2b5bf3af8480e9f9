import pytest

from loyalty import services


@pytest.fixture
def desk_program(program, store):
    """The conftest program, run by the clerk's store, with a welcome bonus of 100 points."""
    program.stores.add(store)
    program.welcome_bonus = 100
    program.save()
    return program


@pytest.fixture
def counter_enrol(desk_program, store, clerk_user):
    """counter_enrol(**member fields) -> Account: a customer enrolled at the clerk's desk."""

    def _enrol(**fields):
        fields.setdefault("first_name", "Jo")
        fields.setdefault("last_name", "Peeters")
        fields.setdefault("member_type", "consumer")
        fields.setdefault("accept_terms", True)
        return services.member_enrol(
            program=fields.pop("program", desk_program),
            channel="counter",
            enrolled_by=clerk_user,
            store=store,
            home_store=store,
            **fields,
        )

    return _enrol
