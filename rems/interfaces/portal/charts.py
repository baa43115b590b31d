"""Charts for the reports page, drawn on the server as SVG: nothing to load, no script, and each chart comes
with the same figures as a table for screen readers. The colours are the Okabe-Ito palette, which stays
distinguishable with every common colour-vision deficiency, and every bar is labelled with its value."""

from collections import OrderedDict

from django.utils.html import format_html, format_html_join

BLUE, VERMILLION, ORANGE, SKY, GREEN, PURPLE = "#0072B2", "#D55E00", "#E69F00", "#56B4E9", "#009E73", "#CC79A7"
PALETTE = [VERMILLION, BLUE, ORANGE, GREEN, PURPLE, SKY]
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 260, 48, 40, 16


def _label(period_start, period):
    if period in ("day", "week"):
        return period_start.strftime("%Y-%m-%d")
    if period == "month":
        return period_start.strftime("%Y-%m")
    if period == "quarter":
        return f"{period_start.year} Q{(period_start.month - 1) // 3 + 1}"
    return str(period_start.year)


def _n(number):
    return f"{number:.1f}"


def grouped_bars(*, title, categories, series, unit=""):
    """categories: labels along the x axis; series: [(name, colour, [value per category])]. Returns a dict with
    the SVG, the legend and the table rows for the template."""
    peak = max([v for _, _, values in series for v in values] + [0]) or 1
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    group_w = plot_w / max(len(categories), 1)
    bar_w = max(min(group_w * 0.8 / max(len(series), 1), 40), 2)
    shapes = []
    for c, category in enumerate(categories):
        x0 = LEFT + c * group_w + (group_w - bar_w * len(series)) / 2
        for s, (name, colour, values) in enumerate(series):
            value = values[c]
            h = plot_h * value / peak
            x, y = x0 + s * bar_w, TOP + plot_h - h
            shapes.append(format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {} {}{}</title></rect>',
                _n(x), _n(y), _n(bar_w - 1), _n(h), colour, category, name, value, unit))
            if value and len(categories) * len(series) <= 24:
                shapes.append(format_html('<text x="{}" y="{}" class="bar-value">{}</text>',
                                          _n(x + (bar_w - 1) / 2), _n(y - 3), value))
        if len(categories) <= 12 or c % max(len(categories) // 12, 1) == 0:
            shapes.append(format_html('<text x="{}" y="{}" class="axis-label">{}</text>',
                                      _n(LEFT + c * group_w + group_w / 2), HEIGHT - BOTTOM + 16, category))
    axis = format_html(
        '<line x1="{}" y1="{}" x2="{}" y2="{}" class="axis"/><text x="{}" y="{}" class="axis-max">{}{}</text>',
        LEFT, TOP + plot_h, WIDTH - 8, TOP + plot_h, LEFT - 4, TOP + 10, peak, unit)
    svg = format_html(
        '<svg viewBox="0 0 {} {}" class="chart" role="img" aria-label="{}" focusable="false">{}{}</svg>',
        WIDTH, HEIGHT, title, axis, format_html_join("", "{}", ((s,) for s in shapes)))
    return {
        "title": title,
        "svg": svg,
        "legend": [{"name": name, "colour": colour, "index": i} for i, (name, colour, _) in enumerate(series)],
        "columns": [name for name, _, _ in series],
        "rows": [{"category": category, "cells": [(name, values[c]) for name, _, values in series]}
                 for c, category in enumerate(categories)],
        "empty": not categories,
    }


def _by_period(rows, key, value="count"):
    table = OrderedDict()
    for row in rows:
        table.setdefault(row["period_start"], {}).setdefault(row[key], 0)
        table[row["period_start"]][row[key]] += row[value]
    return table


def decisions_by_outcome(decisions, period="month"):
    table = _by_period(decisions, "outcome")
    categories = [_label(p, period) for p in table]
    series = [
        ("Denied", VERMILLION, [table[p].get("denied", 0) for p in table]),
        ("Approved", BLUE, [table[p].get("approved", 0) for p in table]),
    ]
    return grouped_bars(title="Decisions by outcome", categories=categories, series=series)


def failed_checks(failed, period="month", top=5):
    totals = {}
    for row in failed:
        totals[row["code"]] = totals.get(row["code"], 0) + row["count"]
    codes = sorted(totals, key=lambda code: (-totals[code], code))[:top]
    table = _by_period(failed, "code")
    categories = [_label(p, period) for p in table]
    series = [(code, PALETTE[i % len(PALETTE)], [table[p].get(code, 0) for p in table]) for i, code in enumerate(codes)]
    return grouped_bars(title="Denials by failed check", categories=categories, series=series)


def time_to_dispense(rows, period="month"):
    table = OrderedDict()
    for row in rows:
        entry = table.setdefault(row["period_start"], {"median": [], "p90": []})
        entry["median"].append(row["median_hours"])
        entry["p90"].append(row["p90_hours"])
    categories = [_label(p, period) for p in table]
    # With several programs in a period the figures are those of the slowest program, and say so.
    several = any(len(entry["median"]) > 1 for entry in table.values())
    suffix = " (slowest program)" if several else ""
    series = [
        ("Median hours" + suffix, BLUE, [round(max(table[p]["median"]), 1) for p in table]),
        ("90th percentile hours" + suffix, ORANGE, [round(max(table[p]["p90"]), 1) for p in table]),
    ]
    return grouped_bars(title="Time from prescription authorization to dispense", categories=categories,
                        series=series, unit=" h")
