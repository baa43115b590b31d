"""`seed_demo --json`: the contract's object, every bundled program with its products, and the demo prescriber
and pharmacy certified in each; safe to run again."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from rems.core.identifiers import ndc_parse
from rems.program.models import Certification, Product, Status
from rems.program.programs import BUNDLED

pytestmark = pytest.mark.django_db

SLUGS = {"pomalidomide", "lenalidomide", "thalidomide", "isotretinoin"}


def seed():
    out = io.StringIO()
    call_command("seed_demo", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_seed_demo_prints_every_program_with_its_products_and_certifies_the_demo_parties_in_each():
    result = seed()

    assert set(result["programs"]) == SLUGS
    for slug in SLUGS:
        data = json.loads((BUNDLED / f"{slug}.json").read_text())
        assert {p["ndc"] for p in result["programs"][slug]["products"]} == {ndc_parse(p["ndc"]) for p in data["products"]}
        for party in ({"prescriber_id": result["prescriber_id"]}, {"pharmacy_id": result["pharmacy_id"]}):
            assert Certification.objects.filter(program__slug=slug, status=Status.ACTIVE,
                                                expires_at__gt=timezone.now(), **party).count() == 1
    # the contract's first keys stay as they were: pomalidomide's
    assert result["program"] == "pomalidomide"
    assert result["products"] == result["programs"]["pomalidomide"]["products"]
    assert set(result["tokens"]) == {"prescriber", "pharmacist", "auditor", "admin"}


def test_seed_demo_again_creates_nothing_twice_and_issues_new_keys():
    first = seed()
    counts = (Product.objects.count(), Certification.objects.count())

    second = seed()

    assert (Product.objects.count(), Certification.objects.count()) == counts
    assert second["prescriber_id"] == first["prescriber_id"] and second["programs"] == first["programs"]
    assert second["tokens"]["prescriber"] != first["tokens"]["prescriber"]


def test_load_program_loads_every_bundled_program_and_asks_for_one_when_given_none():
    out = io.StringIO()
    call_command("load_program", "--bundled", stdout=out)
    assert sorted(line.split(":")[0] for line in out.getvalue().splitlines()) == sorted(SLUGS)
    with pytest.raises(CommandError, match="--bundled"):
        call_command("load_program")
    with pytest.raises(CommandError, match="No such file"):
        call_command("load_program", "nothing-of-the-kind")
