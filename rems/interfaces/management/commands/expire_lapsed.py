import json

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from dispensing.sweeps import expire_lapsed


class Command(BaseCommand):
    help = "Expire RDAs, prescription authorizations and certifications past their validity, once, now."

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(expire_lapsed(now=timezone.now(), workers=settings.REMS_SWEEP_WORKERS)))
