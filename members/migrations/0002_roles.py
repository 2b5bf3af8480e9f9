from django.db import migrations

# Group names are the values of members.roles.Role; their permissions are kept exact by
# members.roles.sync_role_permissions, which runs after every migrate.
ROLE_GROUPS = ["Program manager", "Store clerk", "Analyst"]


def create_role_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLE_GROUPS:
        Group.objects.get_or_create(name=name)


def delete_role_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("members", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_role_groups, delete_role_groups)]
