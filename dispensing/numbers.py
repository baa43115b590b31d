"""New authorization and RDA numbers (their format and check character: `rems.core.identifiers`)."""

from rems.core.identifiers import authorization_number_new


def number_unused(model, field, prefix):
    """A new number that no row of `model` holds in `field`: 50 random bits make a collision astronomically rare,
    but one never silently overwrites."""
    while True:
        number = authorization_number_new(prefix)
        if not model.objects.filter(**{field: number}).exists():
            return number
