from django.db import migrations

from members.migrations import DEFAULT_MEMBER_TYPES as DEFAULT_TYPES


def add_default_types(apps, schema_editor):
    MemberType = apps.get_model("members", "MemberType")
    for position, (code, name) in enumerate(DEFAULT_TYPES):
        MemberType.objects.get_or_create(code=code, defaults={"name": name, "position": position})


class Migration(migrations.Migration):
    dependencies = [("members", "0004_member_profile")]

    operations = [migrations.RunPython(add_default_types, migrations.RunPython.noop)]
