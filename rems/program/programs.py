"""Programs as data: a program file (its products and its effective-dated rule sets) loaded into the database.
A loaded rule set never changes; new rules are a new version with its own date."""

from datetime import datetime
from pathlib import Path

from django.db import transaction

from rems.compliance_log.actions import Action
from rems.compliance_log.writer import log_entry_write
from rems.core.errors import ActionRefused
from rems.core.identifiers import ndc_parse
from rems.core.rules import InvalidRuleSet, RuleParameters

from .models import Product, Program, RuleSet

# The program files that come with the service, by program slug: `<slug>.json`.
BUNDLED = Path(__file__).resolve().parent / "data"


class CannotLoadProgram(ActionRefused):
    code = "invalid_program"


@transaction.atomic
def program_load(*, actor, data, now):
    """Create or complete a program from its data file: products and effective-dated rule sets.

    Loading is idempotent. A rule set, once loaded, never changes: old decisions must stay explainable under
    the rules they were made with, so a new version of the rules is a new rule set with its own date.
    Returns the program and the labels of the rule sets newly loaded.
    """
    try:
        slug, name = data["slug"], data["name"]
        products, rule_sets = data.get("products", []), data.get("rule_sets", [])
    except (KeyError, TypeError) as exc:
        raise CannotLoadProgram(f"Program data lacks {exc}.") from None
    program, _ = Program.objects.get_or_create(slug=slug, defaults={"name": name})
    for item in products:
        ndc = ndc_parse(item["ndc"])
        product, created = Product.objects.get_or_create(
            ndc=ndc, defaults={"program": program, "name": item["name"], "strength_mg": item["strength_mg"],
                               "package_size": item["package_size"]},
        )
        if product.program_id != program.pk:
            raise CannotLoadProgram(f"NDC {ndc} already belongs to another program.")
    loaded = []
    for item in rule_sets:
        try:
            RuleParameters.from_dict(item["parameters"])
            effective_at = datetime.fromisoformat(item["effective_at"].replace("Z", "+00:00"))
        except (InvalidRuleSet, KeyError, ValueError, AttributeError) as exc:
            raise CannotLoadProgram(f"Rule set {item.get('version')!r} of {slug} is invalid: {exc}") from None
        if effective_at.tzinfo is None:
            raise CannotLoadProgram(f"Rule set {item['version']!r}: effective_at needs an offset.")
        existing = RuleSet.objects.filter(program=program, version=item["version"]).first()
        if existing is not None:
            if existing.parameters != item["parameters"] or existing.effective_at != effective_at:
                raise CannotLoadProgram(
                    f"Rule set {slug}@{item['version']} is already loaded with other values; rule sets never change, "
                    "load the new rules as a new version."
                )
            continue
        rule_set = RuleSet.objects.create(
            program=program, version=item["version"], effective_at=effective_at, parameters=item["parameters"],
            sources=item.get("sources", {}),
        )
        loaded.append(rule_set.label)
        log_entry_write(
            actor=actor, action=Action.RULE_SET_LOAD, outcome="loaded", object_type="rule_set", object_id=rule_set.pk,
            program=slug, rule_set=rule_set.label, now=now,
            detail={"effective_at": effective_at.isoformat(), "parameters": item["parameters"]},
        )
    return program, loaded
