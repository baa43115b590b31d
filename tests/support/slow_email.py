"""An email backend for tests that need a worker caught in the middle of sending: it marks that it started, then
waits long enough to be killed, then writes the message like the file backend."""

import os
import time
from pathlib import Path

from django.core.mail.backends.filebased import EmailBackend as FileBackend


class EmailBackend(FileBackend):
    def send_messages(self, email_messages):
        Path(os.environ["SLOW_EMAIL_MARKER"]).write_text("sending")
        time.sleep(float(os.environ.get("SLOW_EMAIL_SECONDS", "60")))
        return super().send_messages(email_messages)
