import itertools
from datetime import date

import factory
from django.utils import timezone

from accounts.models import Role, User
from accounts.services import api_key_issue
from rems.core.identifiers import ncpdp_with_check_digit, npi_with_check_digit
from rems.program.models import Patient, Pharmacy, Prescriber, Status

_npi = itertools.count(100000000)
_ncpdp = itertools.count(100000)


class PrescriberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prescriber

    npi = factory.LazyFunction(lambda: npi_with_check_digit(str(next(_npi))))
    first_name = "Pat"
    last_name = factory.Sequence(lambda n: f"Prescriber{n}")
    email = factory.LazyAttribute(lambda o: f"{o.last_name.lower()}@example.org")


class PharmacyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Pharmacy

    ncpdp_id = factory.LazyFunction(lambda: ncpdp_with_check_digit(str(next(_ncpdp))))
    npi = factory.LazyFunction(lambda: npi_with_check_digit(str(next(_npi))))
    name = factory.Sequence(lambda n: f"Pharmacy {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    role = Role.ADMIN


class PatientFactory(factory.django.DjangoModelFactory):
    """A patient enrolled directly (the enrollment service is tested on its own)."""

    class Meta:
        model = Patient

    prescriber = factory.SubFactory(PrescriberFactory)
    first_name = "Alex"
    last_name = factory.Sequence(lambda n: f"Patient{n}")
    date_of_birth = date(1990, 5, 1)
    risk_category = "FRP_ADULT"
    agreement_signed_on = date(2025, 1, 2)
    irregular_cycles = False
    status = Status.ACTIVE
    enrolled_at = factory.LazyFunction(timezone.now)
    status_changed_at = factory.SelfAttribute("enrolled_at")


def token_for(user, now):
    return api_key_issue(actor=None, user=user, now=now)[1]
