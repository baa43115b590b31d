"""Row locks, taken in one order everywhere (patient, then prescription authorization, then RDA), so that
concurrent requests wait for each other rather than deadlock. FOR NO KEY UPDATE: a lock queues the decisions
and changes of the same row, not the foreign-key checks of records that merely point at it."""

from rems.program.models import Patient

from .models import Prescription


def patient_lock(patient_id):
    """Lock the patient's row until the transaction ends; returns the enrollment's status."""
    return (Patient.objects.select_for_update(no_key=True).filter(pk=patient_id)
            .values_list("status", flat=True).get())


def prescription_lock(prescription_id):
    """Lock the prescription authorization's row until the transaction ends; returns its status."""
    return (Prescription.objects.select_for_update(no_key=True).filter(pk=prescription_id)
            .values_list("status", flat=True).get())


def patient_locked(patient_id):
    """The patient with its program, the patient's row locked until the transaction ends: one decision per
    patient at a time. Only the patient's row: locking the program's too would queue every decision of the
    program behind one another, and deadlock with other transactions' foreign-key checks at their commit."""
    return (Patient.objects.select_for_update(of=("self",), no_key=True).select_related("program")
            .get(pk=patient_id))
