"""Writing the compliance log: the one way an entry is written.

Services call `log_entry_write` inside the transaction of the change it records, so that the entry and the
change commit or roll back together. A sweep that changes thousands of rows in one SQL statement writes their
entries in that statement too, with `log_insert_sql`, from the same column list and the same actor fields.
Either way the database's insert trigger hashes and chains each entry, whatever the inserter gives.
"""

import contextvars
import uuid

from django.db import connection

from rems.prepared import insert_params, placeholder, prepared_cursor

from .actions import Action
from .models import ComplianceLogEntry

# The id of the request being served (or of the task being run), recorded with every entry it writes.
request_id_var = contextvars.ContextVar("request_id", default="")

# The columns an entry is written with. The database sets the others (`seq`, `recorded_at` and the chain
# columns) on insert.
COLUMNS = (
    "id", "occurred_at", "action", "outcome", "actor_user_id", "actor_username", "actor_role",
    "actor_prescriber_id", "actor_pharmacy_id", "program", "object_type", "object_id", "patient_id",
    "prescriber_id", "pharmacy_id", "prescription_id", "rule_set", "checks", "facts", "detail", "request_id",
)


_FIELDS = [ComplianceLogEntry._meta.get_field(column) for column in COLUMNS]
# One entry, as a prepared statement: written once, parsed and planned once per connection.
_INSERT_SQL = (
    f"INSERT INTO {ComplianceLogEntry._meta.db_table} ({', '.join(COLUMNS)}) VALUES ("
    + ", ".join(placeholder(field) for field in _FIELDS)
    + ") RETURNING seq"
)


def actor_fields(actor):
    """Who acted: the user, the role, and the prescriber or pharmacy acted for. None is the system itself."""
    if actor is None:
        return {"actor_user_id": None, "actor_username": "system", "actor_role": "system",
                "actor_prescriber_id": None, "actor_pharmacy_id": None}
    return {
        "actor_user_id": actor.pk, "actor_username": actor.username, "actor_role": actor.role,
        "actor_prescriber_id": actor.prescriber_id, "actor_pharmacy_id": actor.pharmacy_id,
    }


def _action(action):
    if not isinstance(action, Action):
        raise TypeError(f"a compliance-log action is a member of Action, not {action!r}")
    return str(action)


def log_entry_write(
    *,
    actor,
    action: Action,
    outcome,
    object_type,
    object_id,
    now,
    program="",
    patient_id=None,
    prescriber_id=None,
    pharmacy_id=None,
    prescription_id=None,
    rule_set="",
    checks=(),
    facts=None,
    detail=None,
    entry_id=None,
):
    """Write one entry; returns it. `actor` is the user who acted, or None for the service itself."""
    row = {
        "id": entry_id or uuid.uuid4(),
        "occurred_at": now,
        "action": _action(action),
        "outcome": outcome,
        **actor_fields(actor),
        "program": program,
        "object_type": object_type,
        "object_id": str(object_id),
        "patient_id": patient_id,
        "prescriber_id": prescriber_id,
        "pharmacy_id": pharmacy_id,
        "prescription_id": prescription_id,
        "rule_set": rule_set,
        "checks": list(checks),
        "facts": facts or {},
        "detail": detail or {},
        "request_id": request_id_var.get(),
    }
    entry = ComplianceLogEntry(**row)
    with prepared_cursor() as cursor:
        cursor.execute(_INSERT_SQL, insert_params(entry, _FIELDS))
        (entry.seq,) = cursor.fetchone()
    entry._state.adding, entry._state.db = False, connection.alias
    return entry


# What a column holds when a set-based writer gives no expression for it.
_DEFAULTS = {
    "id": "gen_random_uuid()", "program": "''", "patient_id": "NULL", "prescriber_id": "NULL",
    "pharmacy_id": "NULL", "prescription_id": "NULL", "rule_set": "''", "checks": "'[]'::jsonb",
    "facts": "'{}'::jsonb", "detail": "'{}'::jsonb", "request_id": "%(log_request_id)s",
}


def _literal(value):
    if value is None:
        return "NULL"
    text = str(value)
    if "'" in text or "%" in text:
        raise ValueError(f"not a plain constant: {text!r}")
    return f"'{text}'"


def log_insert_sql(*, action: Action, source, expressions):
    """The INSERT that writes one entry per row of `source` (the rest of a SELECT statement, from FROM on), the
    service itself as the actor: for a sweep that changes many rows in one statement. `expressions` maps columns
    to SQL expressions over the source; `occurred_at`, `outcome`, `object_type` and `object_id` are required,
    the other columns take their defaults. Execute it with `log_insert_params()` among the parameters."""
    # The action and the actor are the writer's, never the caller's.
    fixed = {"action": _literal(_action(action)),
             **{column: _literal(value) for column, value in actor_fields(None).items()}}
    required = {"occurred_at", "outcome", "object_type", "object_id"}
    missing = required - {column for column, expression in expressions.items() if expression}
    unknown = expressions.keys() - (set(COLUMNS) - fixed.keys())
    if missing or unknown:
        raise ValueError(f"log_insert_sql: missing {sorted(missing)}, not the caller's {sorted(unknown)}")
    select = ", ".join(fixed.get(column) or expressions.get(column) or _DEFAULTS[column] for column in COLUMNS)
    return f"INSERT INTO {ComplianceLogEntry._meta.db_table} ({', '.join(COLUMNS)}) SELECT {select} {source}"


def log_insert_params():
    """The parameters of a `log_insert_sql` statement, read when it is executed: the request or task it is for."""
    return {"log_request_id": request_id_var.get()}
