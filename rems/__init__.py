"""The REMS dispensing compliance service.

- `config`: settings, URLs and the Celery app: what wires the rest together.
- `core`: the pure core (the gate engine, rule parameters, identifiers, what is due): no Django.
- `compliance_log`: the append-only, hash-chained log every app writes to.
- `program`: the program's records: programs and rule sets, parties and certifications, patients, reminders.
- `interfaces`: the API, the web portal, the admin site, the Celery tasks and the commands.

The other domain apps are `accounts` (users and keys) and `dispensing` (prescriptions and dispenses);
`docs/architecture.md` draws the layers. Importing this package loads nothing: the pure core stays pure.
"""
