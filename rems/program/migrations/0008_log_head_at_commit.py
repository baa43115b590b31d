from django.db import migrations

from rems.compliance_log import sql as log_sql


class Migration(migrations.Migration):
    dependencies = [("rems", "0007_log_hash_v2")]

    operations = [
        migrations.RunSQL(log_sql.APPEND_FUNCTION_V3, reverse_sql=log_sql.UNDO_APPEND_FUNCTION_V3),
    ]
