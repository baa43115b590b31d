import json
import secrets

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, User
from accounts.services import api_key_issue, user_create
from rems.core.identifiers import ncpdp_with_check_digit, npi_with_check_digit
from rems.program.certifications import certification_create
from rems.program.models import Certification, Pharmacy, Prescriber, Program, Status
from rems.program.programs import BUNDLED
from rems.program.registry import pharmacy_create, prescriber_create

DEMO_PRESCRIBER_NPI = npi_with_check_digit("123456789")
DEMO_PHARMACY_NPI = npi_with_check_digit("198765432")
DEMO_PHARMACY_NCPDP = ncpdp_with_check_digit("059999")


class Command(BaseCommand):
    help = (
        "Load, if missing, every bundled program (pomalidomide, lenalidomide, thalidomide, isotretinoin); create a "
        "prescriber and a pharmacy with one pharmacist, both certified in every program, an auditor and a program "
        "administrator; issue each user a fresh key and a fresh password for the portal. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")

    def handle(self, *args, **options):
        slugs = sorted(path.stem for path in BUNDLED.glob("*.json"))
        call_command("load_program", "--bundled", stdout=open("/dev/null", "w"))
        now = timezone.now()
        with transaction.atomic():
            programs = list(Program.objects.filter(slug__in=slugs).order_by("slug"))
            program = next(p for p in programs if p.slug == "pomalidomide")
            prescriber = Prescriber.objects.filter(npi=DEMO_PRESCRIBER_NPI).first() or prescriber_create(
                actor=None, npi=DEMO_PRESCRIBER_NPI, first_name="Dana", last_name="Demo",
                email="dana.demo@example.org", now=now,
            )
            pharmacy = Pharmacy.objects.filter(ncpdp_id=DEMO_PHARMACY_NCPDP).first() or pharmacy_create(
                actor=None, ncpdp_id=DEMO_PHARMACY_NCPDP, npi=DEMO_PHARMACY_NPI, name="Demo Specialty Pharmacy",
                now=now,
            )
            for certified_in in programs:
                for party in ({"prescriber": prescriber}, {"pharmacy": pharmacy}):
                    active = Certification.objects.filter(
                        program=certified_in, status=Status.ACTIVE, expires_at__gt=now, **party
                    ).exists()
                    if not active:
                        certification_create(actor=None, program=certified_in, now=now, **party)
            users = {
                "prescriber": ("demo-prescriber", Role.PRESCRIBER, {"prescriber": prescriber}),
                "pharmacist": ("demo-pharmacist", Role.PHARMACIST, {"pharmacy": pharmacy}),
                "auditor": ("demo-auditor", Role.AUDITOR, {}),
                "admin": ("demo-admin", Role.ADMIN, {}),
            }
            tokens, passwords = {}, {}
            for name, (username, role, party) in users.items():
                user = User.objects.filter(username=username).first() or user_create(
                    actor=None, username=username, role=role, now=now, **party
                )
                _, tokens[name] = api_key_issue(actor=None, user=user, now=now, label="demo")
                passwords[name] = secrets.token_urlsafe(12)
                user.set_password(passwords[name])
                user.save(update_fields=["password"])
        result = {
            "program": program.slug,
            "prescriber_id": str(prescriber.pk),
            "pharmacy_id": str(pharmacy.pk),
            "products": _products(program),
            "programs": {p.slug: {"name": p.name, "products": _products(p)} for p in programs},
            "tokens": tokens,
            "users": {name: {"username": users[name][0], "password": passwords[name]} for name in users},
        }
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(f"Prescriber {result['prescriber_id']} (NPI {DEMO_PRESCRIBER_NPI})")
        self.stdout.write(f"Pharmacy {result['pharmacy_id']} (NCPDP {DEMO_PHARMACY_NCPDP})")
        for slug, shown in result["programs"].items():
            self.stdout.write(f"Program {slug} ({shown['name']}), both certified:")
            for product in shown["products"]:
                self.stdout.write(f"  {product['ndc']}  {product['name']}")
        for name, token in tokens.items():
            self.stdout.write(f"Key for the demo {name}: {token}")
        for name, login in result["users"].items():
            self.stdout.write(f"Portal sign-in for the demo {name}: {login['username']} / {login['password']}")


def _products(program):
    def number(value):
        return int(value) if value == int(value) else float(value)

    return [{"ndc": p.ndc, "name": p.name, "strength_mg": number(p.strength_mg), "package_size": p.package_size}
            for p in program.products.order_by("strength_mg", "package_size", "ndc")]
