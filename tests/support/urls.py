"""The service's URL patterns with their whole routes, through every included URL configuration."""

from django.urls import URLPattern, URLResolver, get_resolver


def url_patterns(patterns=None, prefix=""):
    """(route, pattern) of every URL pattern, the route including the prefixes of the configurations it is in."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from url_patterns(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern
