"""The admin site, for program administrators (`docs/admin.md`). Django's admin finds this package as the
`admin` module of the interfaces app; importing it registers every model's page."""

from . import accounts, dispensing, ehr, program  # noqa: F401
