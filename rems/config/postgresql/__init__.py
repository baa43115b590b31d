"""Django's PostgreSQL backend, with every wait for the server bounded (`base.py`)."""
