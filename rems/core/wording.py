"""How the engine's sentences write moments, days and counts: one way everywhere, so that a date in a refusal
reads the same as the date in the patient list. All times are UTC."""


def when(moment):
    """A moment to the minute: 2026-11-30 09:30 UTC."""
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def day(moment):
    """The calendar day of a moment: 2026-11-30."""
    return moment.strftime("%Y-%m-%d")


def plural(n, word):
    """`1 day`, `7 days`."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
