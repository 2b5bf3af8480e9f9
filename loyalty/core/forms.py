from django import forms

from loyalty.core.exceptions import ApplicationError


def add_application_error(form: forms.Form, error: ApplicationError) -> None:
    """Show a service's refusal on the form: next to the field it names, else at the top."""
    field = error.extra.get("field")
    form.add_error(field if field in form.fields else None, error.message)
