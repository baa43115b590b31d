import pytest
from django.test import Client

# The same guard as the API's tests: every decision and change made through a page has its log entry.
from tests.api.conftest import every_change_has_its_log_entry  # noqa: F401


@pytest.fixture
def browser():
    """A signed-in browser session for a user: `browser(user)` returns a Django test client."""

    def signed_in(user):
        client = Client()
        client.force_login(user)
        return client

    return signed_in
