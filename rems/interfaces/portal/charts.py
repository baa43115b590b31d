"""The reports page's charts: the figures for Chart.js (served from our own static files, drawn by
`portal-charts.js`), each chart with the same figures as a table, which is also what a screen reader or a
browser without scripts gets. Periods with nothing in them are shown, as zero, so that a gap is not hidden. The
colours are the Okabe-Ito palette, which stays distinguishable with every common colour-vision deficiency."""

from datetime import timedelta

BLUE, VERMILLION, ORANGE, SKY, GREEN, PURPLE = "#0072B2", "#D55E00", "#E69F00", "#56B4E9", "#009E73", "#CC79A7"
PALETTE = [VERMILLION, BLUE, ORANGE, GREEN, PURPLE, SKY]
MOST_PERIODS = 400  # a range longer than this in its periods is shown from its first period with figures


def _label(period_start, period):
    if period in ("day", "week"):
        return period_start.strftime("%Y-%m-%d")
    if period == "month":
        return period_start.strftime("%Y-%m")
    if period == "quarter":
        return f"{period_start.year} Q{(period_start.month - 1) // 3 + 1}"
    return str(period_start.year)


def _truncate(moment, period):
    """The start of the period `moment` is in, as the report's `date_trunc` counts it (UTC)."""
    moment = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        return moment - timedelta(days=moment.weekday())
    if period == "month":
        return moment.replace(day=1)
    if period == "quarter":
        return moment.replace(day=1, month=(moment.month - 1) // 3 * 3 + 1)
    if period == "year":
        return moment.replace(day=1, month=1)
    return moment


def _next(start, period):
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    month = start.month - 1 + months
    return start.replace(year=start.year + month // 12, month=month % 12 + 1)


def periods(starts, period, since=None, until=None):
    """Every period from the first to the last, those without figures included; within the range searched,
    when one was given."""
    starts = sorted(set(starts))
    if not starts:
        return []
    zone = starts[0].tzinfo
    first = min([starts[0]] + ([_truncate(since.astimezone(zone), period)] if since else []))
    last = max([starts[-1]] + ([_truncate((until - timedelta(microseconds=1)).astimezone(zone), period)]
                               if until else []))
    found, current = [], first
    while current <= last:
        found.append(current)
        current = _next(current, period)
    if len(found) > MOST_PERIODS:
        found = [p for p in found if p >= starts[0]][:MOST_PERIODS]
    return found


def duration(hours):
    """A time in words that fit it: minutes under an hour, hours under three days, days beyond."""
    if hours is None:
        return "no dispenses"
    if hours < 1:
        return f"{round(hours * 60)} min"
    if hours < 72:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def bar_chart(*, name, title, categories, series, unit="", shown=None):
    """categories: the periods along the x axis; series: [(name, colour, [value per category])]; `shown` turns a
    value into its words for the table (the count itself by default)."""
    shown = shown or (lambda value: "0" if value is None else str(value))
    return {
        "name": name,
        "title": title,
        "config": {
            "labels": categories,
            "unit": unit,
            "datasets": [{"label": label, "colour": colour, "data": values} for label, colour, values in series],
        },
        "columns": [label for label, _, _ in series],
        "rows": [{"category": category, "cells": [(label, shown(values[c])) for label, _, values in series]}
                 for c, category in enumerate(categories)],
        "empty": not categories,
    }


def _by_period(rows, key, value="count"):
    table = {}
    for row in rows:
        table.setdefault(row["period_start"], {}).setdefault(row[key], 0)
        table[row["period_start"]][row[key]] += row[value]
    return table


def decisions_by_outcome(decisions, period="month", since=None, until=None):
    table = _by_period(decisions, "outcome")
    starts = periods(table, period, since, until)
    series = [
        ("Denied", VERMILLION, [table.get(p, {}).get("denied", 0) for p in starts]),
        ("Approved", BLUE, [table.get(p, {}).get("approved", 0) for p in starts]),
    ]
    return bar_chart(name="outcomes", title="Decisions by outcome", categories=[_label(p, period) for p in starts],
                     series=series, unit="decisions")


def top_codes(totals, top=5):
    """The `top` most frequent codes, and every code tied with the last of them: a tie is never cut at random."""
    ranked = sorted(totals, key=lambda code: (-totals[code], code))
    if len(ranked) <= top:
        return ranked
    least = totals[ranked[top - 1]]
    return [code for code in ranked if totals[code] >= least]


def failed_checks(failed, period="month", top=5, since=None, until=None):
    totals = {}
    for row in failed:
        totals[row["code"]] = totals.get(row["code"], 0) + row["count"]
    codes = top_codes(totals, top)
    table = _by_period(failed, "code")
    starts = periods(table, period, since, until)
    series = [(code, PALETTE[i % len(PALETTE)], [table.get(p, {}).get(code, 0) for p in starts])
              for i, code in enumerate(codes)]
    title = "Denials by failed check"
    if len(codes) > top:
        title += f" (the {top} most frequent, and those tied with them)"
    elif len(totals) > top:
        title += f" (the {top} most frequent)"
    return bar_chart(name="failed", title=title, categories=[_label(p, period) for p in starts], series=series,
                     unit="denials")


def time_to_dispense(rows, period="month", since=None, until=None):
    table = {}
    for row in rows:
        entry = table.setdefault(row["period_start"], {"median": [], "p90": []})
        entry["median"].append(row["median_hours"])
        entry["p90"].append(row["p90_hours"])
    starts = periods(table, period, since, until)
    # With several programs in a period the figures are those of the slowest program, and say so.
    several = any(len(entry["median"]) > 1 for entry in table.values())
    suffix = " (slowest program)" if several else ""
    medians = [max(table[p]["median"]) if p in table else None for p in starts]
    p90s = [max(table[p]["p90"]) if p in table else None for p in starts]
    peak = max([v for v in medians + p90s if v is not None] + [0])
    # The chart's unit follows the figures: minutes when every gap is under an hour, days beyond three.
    unit, scale = ("minutes", 60) if peak < 1 else ("days", 1 / 24) if peak >= 72 else ("hours", 1)

    def scaled(values):
        return [None if v is None else round(v * scale, 1) for v in values]

    series = [("Median" + suffix, BLUE, medians), ("90th percentile" + suffix, ORANGE, p90s)]
    chart = bar_chart(name="dispense", title="Time from prescription authorization to dispense",
                      categories=[_label(p, period) for p in starts], series=series, unit=unit, shown=duration)
    for dataset, (_, _, values) in zip(chart["config"]["datasets"], series, strict=True):
        dataset["data"] = scaled(values)
    return chart
