from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built and dropped concurrently: writes to the prescriptions go on while a large table is indexed. The new
    # index is in place before the old one goes.
    atomic = False

    dependencies = [
        ('dispensing', '0003_matchlock'),
        ('rems', '0008_log_head_at_commit'),
    ]

    operations = [
        AddIndexConcurrently(
            model_name='prescription',
            index=models.Index(condition=models.Q(('status__in', ['issued', 'authorized'])), fields=['expires_at'],
                               name='prescription_open_expiry'),
        ),
        RemoveIndexConcurrently(
            model_name='prescription',
            name='dispensing__status_62ca1d_idx',
        ),
    ]
