from django.db import migrations

from rems.compliance_log import sql as log_sql


class Migration(migrations.Migration):
    dependencies = [("rems", "0003_one_live_enrollment")]

    operations = [
        migrations.RunSQL(log_sql.HEADS_FUNCTION, reverse_sql="DROP FUNCTION IF EXISTS rems_log_heads();"),
    ]
