import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


# The indexes no query reads (dispensing/models.py says why each is not needed), dropped concurrently so that
# writes to the tables go on meanwhile. Each change of a prescription's or RDA's status writes an entry in every
# index of its table; these ten were written and never read.
INDEXES = {
    "dispensing_prescription": {
        "dispensing_prescription_patient_id_50aed73b": "(patient_id)",
        "dispensing_prescription_prescriber_id_59e187cd": "(prescriber_id)",
        "dispensing_prescription_program_id_bac8e613": "(program_id)",
        "dispensing_prescription_product_id_91120cc0": "(product_id)",
        # Django's LIKE index beside the unique index of the number; numbers are only ever compared whole
        "dispensing_prescription_authorization_number_cdb9ed73_like": "(authorization_number varchar_pattern_ops)",
    },
    "dispensing_dispenseauthorization": {
        "dispensing_dispenseauthorization_pharmacy_id_8ed707f3": "(pharmacy_id)",
        "dispensing_dispenseauthorization_product_id_3860655d": "(product_id)",
        "dispensing_dispenseauthorization_requested_by_id_51d2f918": "(requested_by_id)",
        "dispensing_dispenseauthorization_dispensed_by_id_c1b1c2ec": "(dispensed_by_id)",
        "dispensing_dispenseauthorization_rda_number_16971995_like": "(rda_number varchar_pattern_ops)",
    },
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('dispensing', '0005_risk_category_of_any_program'),
        ('rems', '0014_enrollment_transfer'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(f"DROP INDEX CONCURRENTLY IF EXISTS {name}",
                                  reverse_sql=f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} {columns}")
                for table, indexes in INDEXES.items() for name, columns in indexes.items()
            ],
            state_operations=[
                migrations.AlterField(
                    model_name='dispenseauthorization',
                    name='dispensed_by',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(
                    model_name='dispenseauthorization',
                    name='pharmacy',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='dispense_authorizations', to='rems.pharmacy'),
                ),
                migrations.AlterField(
                    model_name='dispenseauthorization',
                    name='product',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rems.product'),
                ),
                migrations.AlterField(
                    model_name='dispenseauthorization',
                    name='requested_by',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(
                    model_name='prescription',
                    name='patient',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='prescriptions', to='rems.patient'),
                ),
                migrations.AlterField(
                    model_name='prescription',
                    name='prescriber',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='prescriptions', to='rems.prescriber'),
                ),
                migrations.AlterField(
                    model_name='prescription',
                    name='product',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rems.product'),
                ),
                migrations.AlterField(
                    model_name='prescription',
                    name='program',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='rems.program'),
                ),
            ],
        ),
    ]
