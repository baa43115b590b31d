"""Prescribers and pharmacies: registering them with the program. Certification is `certifications`."""

from django.db import IntegrityError, transaction
from django.db.models import Q

from rems.compliance_log.actions import Action
from rems.compliance_log.writer import log_entry_write
from rems.core.errors import ActionRefused
from rems.core.identifiers import ncpdp_parse, npi_parse

from .models import Pharmacy, Prescriber


class CannotRegister(ActionRefused):
    pass


@transaction.atomic
def prescriber_create(*, actor, npi, first_name, last_name, email, now):
    npi = npi_parse(npi)
    if Prescriber.objects.filter(npi=npi).exists() or Pharmacy.objects.filter(npi=npi).exists():
        raise CannotRegister(f"NPI {npi} is already registered.", code="duplicate")
    try:
        with transaction.atomic():
            prescriber = Prescriber.objects.create(npi=npi, first_name=first_name, last_name=last_name, email=email)
    except IntegrityError:
        raise CannotRegister(f"NPI {npi} is already registered.", code="duplicate") from None
    log_entry_write(
        actor=actor, action=Action.PRESCRIBER_CREATE, outcome="recorded", object_type="prescriber",
        object_id=prescriber.pk, prescriber_id=prescriber.pk, now=now, detail={"npi": npi},
    )
    return prescriber


@transaction.atomic
def pharmacy_create(*, actor, ncpdp_id, npi, name, now):
    ncpdp_id = ncpdp_parse(ncpdp_id)
    npi = npi_parse(npi)
    if Pharmacy.objects.filter(Q(ncpdp_id=ncpdp_id) | Q(npi=npi)).exists() or Prescriber.objects.filter(npi=npi).exists():
        raise CannotRegister("A party with this NCPDP provider ID or NPI is already registered.", code="duplicate")
    try:
        with transaction.atomic():
            pharmacy = Pharmacy.objects.create(ncpdp_id=ncpdp_id, npi=npi, name=name)
    except IntegrityError:
        raise CannotRegister("A party with this NCPDP provider ID or NPI is already registered.", code="duplicate") from None
    log_entry_write(
        actor=actor, action=Action.PHARMACY_CREATE, outcome="recorded", object_type="pharmacy", object_id=pharmacy.pk,
        pharmacy_id=pharmacy.pk, now=now, detail={"ncpdp_id": ncpdp_id, "npi": npi},
    )
    return pharmacy
