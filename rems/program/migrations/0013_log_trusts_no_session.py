from django.conf import settings
from django.db import migrations

from rems.compliance_log import sql as log_sql


def _test_database(schema_editor):
    return settings.REMS_ENV == "test" and schema_editor.connection.settings_dict["NAME"].startswith("test_")


def _guards(apps, schema_editor):
    # The switch that empties the log exists in test databases only.
    schema_editor.execute(log_sql.guard_functions(test_database=_test_database(schema_editor)), params=None)


def _undo_guards(apps, schema_editor):
    schema_editor.execute(log_sql.UNDO_GUARD_FUNCTIONS, params=None)


class Migration(migrations.Migration):
    dependencies = [("rems", "0012_cds_client_retire")]

    operations = [
        migrations.RunSQL(log_sql.APPEND_FUNCTION_V4, reverse_sql=log_sql.UNDO_APPEND_FUNCTION_V4),
        migrations.RunPython(_guards, _undo_guards),
        migrations.RunSQL(log_sql.APP_ROLE_NOLOGIN, reverse_sql=migrations.RunSQL.noop),
        migrations.AlterModelOptions(
            name="compliancelogentry", options={"verbose_name_plural": "compliance log entries"},
        ),
    ]
