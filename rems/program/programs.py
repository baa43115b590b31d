"""Programs as data: a program file (its products and its effective-dated rule sets) loaded into the database.
A loaded rule set never changes; new rules are a new version with its own date."""

from datetime import datetime
from pathlib import Path

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from rems.compliance_log.actions import Action
from rems.compliance_log.writer import log_entry_write
from rems.core.errors import ActionRefused
from rems.core.identifiers import ndc_parse
from rems.core.rules import InvalidRuleSet, RuleParameters

from .models import Product, Program, RuleSet
from .selectors import RULE_SETS_LOCK
from .validation import InvalidValue

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
    ingredient = data.get("ingredient") or {}
    if not isinstance(ingredient, dict):
        raise CannotLoadProgram("A program's ingredient is an object: name, rxnorm.")
    program, _ = Program.objects.get_or_create(slug=slug, defaults={"name": name})
    found = {"ingredient": str(ingredient.get("name", ""))[:80], "rxnorm": str(ingredient.get("rxnorm", ""))[:20]}
    if any(found.values()) and (program.ingredient, program.rxnorm) != (found["ingredient"], found["rxnorm"]):
        Program.objects.filter(pk=program.pk).update(**found)
        program.refresh_from_db()
    for item in products:
        ndc = ndc_parse(item["ndc"])
        product, created = Product.objects.get_or_create(
            ndc=ndc, defaults={"program": program, "name": item["name"], "strength_mg": item["strength_mg"],
                               "package_size": item["package_size"]},
        )
        if product.program_id != program.pk:
            raise CannotLoadProgram(f"NDC {ndc} already belongs to another program.")
    # A program without rules yet takes its whole history from the file; one in use gets new rules from now on.
    in_use = RuleSet.objects.filter(program=program).exists()
    loaded = []
    for item in rule_sets:
        if not isinstance(item, dict):
            raise CannotLoadProgram(f"A rule set of {slug} is an object.")
        try:
            effective_at = datetime.fromisoformat(str(item["effective_at"]).replace("Z", "+00:00"))
            version = item["version"]
        except (KeyError, ValueError) as exc:
            raise CannotLoadProgram(f"Rule set {item.get('version')!r} of {slug} is invalid: {exc}") from None
        existing = RuleSet.objects.filter(program=program, version=version).first()
        if existing is not None:
            if existing.parameters != item.get("parameters") or existing.effective_at != effective_at:
                raise CannotLoadProgram(
                    f"Rule set {slug}@{version} is already loaded with other values; rule sets never change, "
                    "load the new rules as a new version."
                )
            continue
        try:
            rule_set = _rule_set_create(actor=actor, program=program, version=version, effective_at=effective_at,
                                        parameters=item.get("parameters"), sources=item.get("sources", {}), now=now,
                                        history=not in_use)
        except InvalidValue as exc:
            raise CannotLoadProgram(f"Rule set {version!r} of {slug} is invalid: {exc.message}") from None
        loaded.append(rule_set.label)
    return program, loaded


class RuleSetExists(ActionRefused):
    """A version, or a moment of taking effect, that the program already has: a rule set is never replaced."""

    code = "rule_set_exists"


def _rule_set_create(*, actor, program, version, effective_at, parameters, sources, now, history=False):
    """Validate and store a rule set, and log it. Unless it is part of a new program's history, it takes effect
    no earlier than the moment it is stored: taken under the exclusive lock on the program's rule sets, after
    every decision reading them has committed (`selectors.rule_set_for_decision`)."""
    if not isinstance(version, str) or not version.strip() or len(version) > 40:
        raise InvalidValue("A rule set's version is a text of 1 to 40 characters, e.g. 2027-01-01.", field="version")
    if effective_at.tzinfo is None:
        raise InvalidValue("effective_at needs its offset, e.g. 2027-01-01T00:00:00Z.", field="effective_at")
    try:
        RuleParameters.from_dict(parameters)
    except InvalidRuleSet as exc:
        raise InvalidValue(str(exc), field="parameters") from None
    if not isinstance(sources, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in sources.items()):
        raise InvalidValue("sources: an object from parameter names to where each comes from.", field="sources")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [RULE_SETS_LOCK, program.pk])
    if RuleSet.objects.filter(program=program, version=version).exists():
        raise RuleSetExists(f"Rule set {program.slug}@{version} is already loaded; rule sets are never replaced: "
                            "load the new rules as a new version.")
    if RuleSet.objects.filter(program=program, effective_at=effective_at).exists():
        raise RuleSetExists(f"A rule set of {program.slug} already takes effect at the same moment, "
                            f"{effective_at.isoformat()}; each version takes effect at a moment of its own.")
    if not history and effective_at < max(now, timezone.now()):
        raise InvalidValue("effective_at is in the past; a rule set takes effect now or later, never before the "
                           "moment it is loaded.", field="effective_at")
    try:
        with transaction.atomic():
            rule_set = RuleSet.objects.create(program=program, version=version, effective_at=effective_at,
                                              parameters=parameters, sources=sources)
    except IntegrityError:
        raise RuleSetExists(f"Rule set {program.slug}@{version} was loaded at the same moment.") from None
    log_entry_write(
        actor=actor, action=Action.RULE_SET_LOAD, outcome="loaded", object_type="rule_set", object_id=rule_set.pk,
        program=program.slug, rule_set=rule_set.label, now=now,
        detail={"effective_at": effective_at.isoformat(), "parameters": parameters},
    )
    return rule_set


@transaction.atomic
def rule_set_load(*, actor, program, version, effective_at, parameters, sources, now):
    """A new version of a program's rules, from the program administrator: validated, never effective in the
    past (decisions already made keep the rules they were made under), never replacing a version. Decisions
    made at or after `effective_at` are made under it. Returns the rule set."""
    return _rule_set_create(actor=actor, program=program, version=version, effective_at=effective_at,
                            parameters=parameters, sources=sources, now=now)
