"""What each caller may see: the API and the portal start every lookup here.

Every queryset an interface uses starts from one of the `*_for(user)` functions, before any filter from the
request, so an object outside the caller's scope is simply not found (404), exactly like one that does not
exist.
"""

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.expressions import Col
from django.db.models.fields.related_lookups import RelatedExact
from django.db.models.lookups import Exact, IntegerFieldExact
from django.db.models.query import ModelIterable, get_related_populators
from django.db.models.sql.where import WhereNode
from django.http import Http404

from accounts.models import PHARMACY_ROLES, PRESCRIBER_ROLES, PROGRAM_ROLES, Role, User
from dispensing.models import DispenseAuthorization, MatchLock, Prescription
from rems.compliance_log.models import ComplianceLogEntry
from rems.prepared import prepared_cursor
from rems.program.models import Certification, Notification, Patient, Pharmacy, Prescriber

ADMIN = {Role.ADMIN}
READERS = set(PROGRAM_ROLES)  # administrators and auditors see everything
PRESCRIBER_OFFICE = set(PRESCRIBER_ROLES)
PHARMACY_STAFF = set(PHARMACY_ROLES)
EVERYONE = set(Role)


def prescribers_for(user):
    """The readers see every prescriber; a prescriber's office its own."""
    qs = Prescriber.objects.all()
    if user.role in READERS:
        return qs
    if user.role in PRESCRIBER_OFFICE:
        return qs.filter(pk=user.prescriber_id)
    return qs.none()


def pharmacies_for(user):
    """The readers see every pharmacy; a pharmacy's staff their own."""
    qs = Pharmacy.objects.all()
    if user.role in READERS:
        return qs
    if user.role in PHARMACY_STAFF:
        return qs.filter(pk=user.pharmacy_id)
    return qs.none()


def certifications_for(user):
    """The readers see every certification; an office or a pharmacy the certifications of its own party."""
    qs = Certification.objects.select_related("program")
    if user.role in READERS:
        return qs
    if user.role in PRESCRIBER_OFFICE:
        return qs.filter(prescriber_id=user.prescriber_id)
    if user.role in PHARMACY_STAFF:
        return qs.filter(pharmacy_id=user.pharmacy_id)
    return qs.none()


def patients_for(user):
    """Pharmacies never list patients: they see one only through a dispense decision."""
    qs = Patient.objects.select_related("program")
    if user.role in READERS:
        return qs
    if user.role in PRESCRIBER_OFFICE:
        return qs.filter(prescriber_id=user.prescriber_id)
    return qs.none()


def prescriptions_for(user):
    """The readers see every prescription authorization; a prescriber's office its own prescriber's. Pharmacies
    reach one only by its number, through a dispense decision."""
    qs = Prescription.objects.select_related("product", "program")
    if user.role in READERS:
        return qs
    if user.role in PRESCRIBER_OFFICE:
        return qs.filter(prescriber_id=user.prescriber_id)
    return qs.none()


def dispense_authorizations_for(user):
    """The readers see every RDA; a pharmacy's staff their own pharmacy's."""
    qs = DispenseAuthorization.objects.select_related("prescription__program", "product")
    if user.role in READERS:
        return qs
    if user.role in PHARMACY_STAFF:
        return qs.filter(pharmacy_id=user.pharmacy_id)
    return qs.none()


def match_locks_for(user):
    """Failed-match locks: the program's readers see them all."""
    if user.role in READERS:
        return MatchLock.objects.select_related("pharmacy")
    return MatchLock.objects.none()


def audit_events_for(user):
    """The compliance log, for its readers only (administrators and auditors)."""
    if user.role in READERS:
        return ComplianceLogEntry.objects.all()
    return ComplianceLogEntry.objects.none()


def audit_events_for_prescription(user, prescription):
    """The history of one prescription authorization, in order. `prescription` comes from
    `prescriptions_for(user)`: the prescriber's office sees its own prescriptions' history (interfaces show it
    a reduced form of each entry), the readers every prescription's."""
    base = audit_events_for(user) if user.role in READERS else ComplianceLogEntry.objects.all()
    return base.filter(prescription_id=prescription.pk).order_by("seq")


def notifications_for(user):
    """Everyone sees their own notifications, and nobody else's."""
    return Notification.objects.filter(recipient=user)


def users_for(user):
    """Administrators manage every user; a pharmacy's authorized representative manages its own staff."""
    if user.role == Role.ADMIN:
        return User.objects.all()
    if user.role == Role.PHARMACY_MANAGER:
        return User.objects.filter(pharmacy_id=user.pharmacy_id, role=Role.PHARMACIST)
    return User.objects.none()


def get_in_scope(queryset, **lookup):
    """Fetch one object from a scoped queryset; anything else is a 404."""
    filtered = queryset.filter(**lookup)
    obj = _compiled_first(filtered)
    if obj is _NOT_COMPILED:
        obj = filtered.first()
    if obj is None:
        raise Http404
    return obj


# A lookup in scope is the same statement for every caller of one role: the ORM compiles it once per shape (the
# model, the tables joined, the columns compared and the related rows selected, never the values), and it runs as a
# prepared statement with each request's values. A queryset of another kind (an annotation, a lookup other than
# equality, an expression) is compiled as usual.
_NOT_COMPILED = object()
_statements = {}


class _Unshaped(Exception):
    pass


def _shape(node, values):
    if isinstance(node, WhereNode):
        return (node.connector, node.negated, tuple(_shape(child, values) for child in node.children))
    if type(node) in (Exact, IntegerFieldExact, RelatedExact) and isinstance(node.lhs, Col) and not hasattr(node.rhs, "resolve_expression"):
        values.append(node)
        return (node.lhs.alias, node.lhs.target.column)
    raise _Unshaped


def _compiled_first(queryset):
    query = queryset.query
    if (queryset.db != DEFAULT_DB_ALIAS or queryset._iterable_class is not ModelIterable
            or queryset._known_related_objects or queryset._prefetch_related_lookups or query.annotations
            or query.extra or query.extra_tables or query.distinct or query.combinator or query.select_for_update
            or not query.standard_ordering or query._filtered_relations
            or query.deferred_loading != (frozenset(), True) or query.is_sliced):
        return _NOT_COMPILED
    if query.is_empty():
        return None
    lookups = []
    try:
        # Each join by what it joins, through which relation, and how (not only by its table).
        shape = (query.model, _shape(query.where, lookups), repr(query.select_related), query.order_by,
                 tuple((alias, join.identity, getattr(join, "join_type", None), query.alias_refcount.get(alias))
                       for alias, join in query.alias_map.items()))
    except _Unshaped:
        return _NOT_COMPILED
    connection = connections[DEFAULT_DB_ALIAS]
    values = [lookup.get_db_prep_lookup(lookup.rhs, connection)[1][0] for lookup in lookups]
    if any(isinstance(value, int) and not -2**31 <= value < 2**31 for value in values):
        return _NOT_COMPILED  # the ORM answers a number out of the column's range with nothing found
    statement = _statements.get(shape)
    if statement is None:
        statement = _statements[shape] = _Statement.compiled(queryset, values)
    if statement is _NOT_COMPILED:
        return _NOT_COMPILED
    with prepared_cursor() as cursor:
        cursor.execute(statement.sql, values)
        row = cursor.fetchone()
    return None if row is None else statement.instance(row)


class _Statement:
    """One shape's statement and what building its instances needs, worked out once, as the ORM's iterable would
    on every query."""

    @classmethod
    def compiled(cls, queryset, values):
        compiler = (queryset if queryset.ordered else queryset.order_by("pk"))[:1].query.get_compiler(
            using=DEFAULT_DB_ALIAS)
        sql, params = compiler.as_sql()
        # Kept only when the statement's parameters are exactly the lookups' values, in order.
        return cls(sql, compiler) if list(params) == values else _NOT_COMPILED

    def __init__(self, sql, compiler):
        select, klass_info = compiler.select, compiler.klass_info
        self.sql, self.compiler, self.model = sql, compiler, klass_info["model"]
        self.converters = compiler.get_converters([column for column, _, _ in select[:compiler.col_count]])
        self.start, self.end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        self.names = [column.target.attname for column, _, _ in select[self.start:self.end]]
        self.populators = get_related_populators(klass_info, select, DEFAULT_DB_ALIAS)

    def instance(self, row):
        if self.converters:
            (row,) = self.compiler.apply_converters([row], self.converters)
        obj = self.model.from_db(DEFAULT_DB_ALIAS, self.names, row[self.start:self.end])
        for populator in self.populators:
            populator.populate(row, obj)
        return obj
