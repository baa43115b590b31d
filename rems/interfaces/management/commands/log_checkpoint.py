import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from rems.compliance_log import anchors, checkpoints


class Command(BaseCommand):
    help = ("Write a signed checkpoint of the compliance log's chains now (beat does it every minute); or rotate the "
            "signing key; or print its public key, which auditors need to verify exports without the database.")

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--rotate-key", action="store_true",
                           help="keep the current public key as trusted, then sign with a new key")
        group.add_argument("--public-key", action="store_true", help="print the signing key's public key (PEM)")

    def handle(self, *args, rotate_key=False, public_key=False, **options):
        if public_key:
            self.stdout.write(anchors.public_key_pem(checkpoints.signing_key().public_key()).decode(), ending="")
            return
        if rotate_key:
            new_id = checkpoints.key_rotate()
            self.stdout.write(f"signing with key {new_id}; earlier public keys are kept in "
                              f"{Path(settings.LOG_CHECKPOINT_TRUSTED_KEYS_DIR)}")
            return
        checkpoint, broken = checkpoints.checkpoint_write(now=timezone.now())
        self.stdout.write(json.dumps({"checkpoint": checkpoint.id, "chains": len(checkpoint.anchors),
                                      "contradictions": [c.describe() for c in broken]}))
        if broken:
            raise SystemExit(1)
