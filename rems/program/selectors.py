"""Reads of the program's records that services, decisions and interfaces share: the rule set in force and
the parties' certifications, as the gate engine's facts. Read-only. What each caller may see is decided in
`rems.interfaces.scoping`."""

import json

from django.db import connection
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q

from accounts.models import User
from rems.core.gates import CertificationFact, RuleSetFact
from rems.core.rules import InvalidRuleSet, RuleParameters
from rems.prepared import CompiledOnce, fetch_one

from .models import Certification, RuleSet, Status

# The class of the advisory locks on a program's rule sets (the second key is the program's id): decisions hold
# it shared from before they read the rule set in force until they commit; loading a rule set holds it alone.
RULE_SETS_LOCK = 0x52554C45


def rule_set_for_decision(*, program, now):
    """The rule set in force at `now`, for a decision: read under the shared lock on the program's rule sets, held
    until the decision commits. A rule set being loaded is committed before the read, or waits for the decision
    to commit and then checks that it does not take effect before the moment it is committed
    (`programs.rule_set_load`): a decision is made under exactly the rule set in force at its `now`, even in
    flight at the moment of a switch. Call it inside the decision's transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", [RULE_SETS_LOCK, program.pk])
    return rule_set_in_force(program=program, now=now)


def rule_set_in_force(*, program, now):
    """The rule set of `program` in force at `now`, as a fact; a missing or invalid one is a fact too, and the
    gate engine denies on it. Its parsing is held in process, as the decisions' is (`rule_set_fact_held`)."""
    row = fetch_one(_IN_FORCE_SQL, {"program": program.pk, "now": now, "held": rule_set_keys_held()})
    if row is None:
        return _no_rule_set(program.slug)
    key, version, parameters = row
    return rule_set_fact_held(key=key, slug=program.slug, version=version, parameters=parameters)


def _no_rule_set(slug):
    return RuleSetFact(label=f"{slug}@none", parameters=None, problem="no rule set in force")


def _rule_set_fact(label, parameters):
    try:
        return RuleSetFact(label=label, parameters=RuleParameters.from_dict(parameters))
    except InvalidRuleSet as exc:
        return RuleSetFact(label=label, parameters=None, problem=f"rule set {label} is invalid: {exc}")


# Rule sets held in this process, validated, by row and row version (`id:xmin`). Which rule set is in force is
# read from the database by every decision, under the shared lock (`rule_set_for_decision`, or the decisions' own
# first statement); what is held is only its parsing. A loaded rule set never changes, and were its row ever
# changed, its xmin would change too and it would be read and parsed anew. A handful of rows per program.
_HELD = {}


def rule_set_keys_held():
    """The keys (`id:xmin`) of the rule sets held in this process: a decision's statement need not send their
    parameters again."""
    return list(_HELD)


def rule_set_fact_held(*, key, slug, version, parameters):
    """The fact of the rule set in force that a decision's statement found: `key` is its `id:xmin` (None: no rule
    set in force), `parameters` its stored parameters, or None when the statement did not send them because this
    process holds them."""
    if key is None:
        return _no_rule_set(slug)
    fact = _HELD.get(key)
    if fact is None:
        if parameters is None:  # held when the statement was prepared, gone since: read them again
            parameters = RuleSet.objects.filter(pk=int(key.partition(":")[0])).values_list("parameters", flat=True).first()
        elif isinstance(parameters, str):
            parameters = json.loads(parameters)
        fact = _rule_set_fact(f"{slug}@{version}", parameters)
        _HELD[key] = fact
    return fact


def rule_set_in_force_sql(program):
    """The statement reading the rule set in force at `%(now)s` for the program whose id is the SQL expression
    `program`: its key (`id:xmin`), version, and parameters only when this process does not hold them (`%(held)s`,
    `rule_set_keys_held()`). Decisions join it into their facts; `rule_set_in_force` runs it alone."""
    return f"""SELECT r.id::text || ':' || r.xmin::text AS key, r.version,
         CASE WHEN r.id::text || ':' || r.xmin::text = ANY(%(held)s::text[]) THEN NULL ELSE r.parameters END AS parameters
    FROM {RuleSet._meta.db_table} r WHERE r.program_id = {program} AND r.effective_at <= %(now)s
   ORDER BY r.effective_at DESC LIMIT 1"""


_IN_FORCE_SQL = rule_set_in_force_sql("%(program)s::bigint").replace("%(now)s", "%(now)s::timestamptz")


def rule_set_row_in_force(*, program, now):
    """The RuleSet of `program` in force at `now` (as stored: version, effective_at, parameters, sources), or
    None."""
    return RuleSet.objects.filter(program=program, effective_at__lte=now).order_by("-effective_at").first()


def rule_set_parameters(label):
    """The parameters of the rule set labelled `slug@version` (as a decision names it), or None."""
    slug, _, version = (label or "").partition("@")
    row = RuleSet.objects.filter(program__slug=slug, version=version).values_list("parameters", flat=True).first()
    try:
        return RuleParameters.from_dict(row) if row is not None else None
    except InvalidRuleSet:
        return None


def category_label(params, name):
    """A risk category's label under `params`, or its name when the rule set does not have it."""
    category = params.category(name) if params else None
    return category.label if category else name


def certification_fact(*, program_id, prescriber_id=None, pharmacy_id=None):
    """The party's live certification (pending, active or suspended), else its latest one, else None."""
    qs = Certification.objects.filter(program_id=program_id)
    qs = qs.filter(prescriber_id=prescriber_id) if prescriber_id else qs.filter(pharmacy_id=pharmacy_id)
    row = (
        qs.order_by("-certified_at")
        .values("status", "expires_at")
        .first()
    )
    if row is None:
        return None
    return CertificationFact(status=row["status"], expires_at=row["expires_at"])


def certification_is_active(*, program_id, now, prescriber_id=None, pharmacy_id=None):
    fact = certification_fact(program_id=program_id, prescriber_id=prescriber_id, pharmacy_id=pharmacy_id)
    return fact is not None and fact.status == Status.ACTIVE and fact.expires_at > now


def certification_facts(*, program_id, prescriber_id, pharmacy_id):
    """The prescriber's and the pharmacy's latest certifications in the program, in one query."""
    latest = {}
    rows = (
        Certification.objects.filter(program_id=program_id)
        .filter(Q(prescriber_id=prescriber_id) | Q(pharmacy_id=pharmacy_id))
        .order_by("-certified_at")
        .values("prescriber_id", "pharmacy_id", "status", "expires_at")
    )
    for row in rows:
        party = "prescriber" if row["prescriber_id"] else "pharmacy"
        latest.setdefault(party, CertificationFact(status=row["status"], expires_at=row["expires_at"]))
    return latest.get("prescriber"), latest.get("pharmacy")


BARRED_STATUSES = [Status.SUSPENDED, Status.REVOKED]


def _of_party(prescriber_ref, pharmacy_ref):
    return Q(prescriber_id=prescriber_ref) | Q(pharmacy_id=pharmacy_ref)


def party_barred_expression(prefix=""):
    """An expression over users (`prefix` leads to the user): true when the prescriber or pharmacy the user acts
    for is suspended or revoked in every program it holds a certification of. Every operation acting for it is
    then refused, but decisions, which are still evaluated and denied by their gates. A party barred in some of
    its programs only is refused what it does in those (`party_bar_check`)."""
    mine = _of_party(OuterRef(f"{prefix}prescriber_id"), OuterRef(f"{prefix}pharmacy_id"))
    # a certification whose program has a barred certification of the same party
    barred_in_its_program = Certification.objects.filter(
        _of_party(OuterRef("prescriber_id"), OuterRef("pharmacy_id")), program_id=OuterRef("program_id"),
        status__in=BARRED_STATUSES,
    )
    return ExpressionWrapper(
        Exists(Certification.objects.filter(mine, status__in=BARRED_STATUSES))
        & ~Exists(Certification.objects.filter(mine).exclude(Exists(barred_in_its_program))),
        output_field=BooleanField(),
    )


def party_barred_in(*, program_id, prescriber_id=None, pharmacy_id=None):
    """Whether the prescriber or pharmacy has a suspended or revoked certification in the program."""
    party = {"prescriber_id": prescriber_id} if prescriber_id else {"pharmacy_id": pharmacy_id} if pharmacy_id else None
    if party is None:
        return False
    return Certification.objects.filter(program_id=program_id, status__in=BARRED_STATUSES, **party).exists()


# Whether a user's party is barred, by the user's id: compiled by the ORM once per process.
_BARRED = CompiledOnce(lambda user_id: (User.objects.filter(pk=user_id).annotate(b=party_barred_expression())
                                        .values_list("b", flat=True)), -1)


def party_is_barred(user):
    """Whether the party `user` acts for is barred (see `party_barred_expression`); read once per request and kept
    on the user (the API's key lookup reads it with the key). The statement is built once per process from
    `party_barred_expression` and prepared once per connection."""
    barred = getattr(user, "party_barred", None)
    if barred is None:
        if not (user.prescriber_id or user.pharmacy_id):
            barred = False
        else:
            row = _BARRED.fetch_one(user.pk)
            barred = bool(row and row[0])
        user.party_barred = barred
    return barred
