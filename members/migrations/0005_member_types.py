from django.db import migrations

# The trades most programs start with; staff rename, reorder or add their own in the admin.
DEFAULT_TYPES = [
    ("consumer", "Consumer"),
    ("contractor", "Contractor"),
    ("roofer", "Roofer"),
    ("installer", "Installer"),
    ("retailer", "Retailer"),
]


def add_default_types(apps, schema_editor):
    MemberType = apps.get_model("members", "MemberType")
    for position, (code, name) in enumerate(DEFAULT_TYPES):
        MemberType.objects.get_or_create(code=code, defaults={"name": name, "position": position})


class Migration(migrations.Migration):
    dependencies = [("members", "0004_member_profile")]

    operations = [migrations.RunPython(add_default_types, migrations.RunPython.noop)]
