import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from rems.core.errors import ActionRefused
from rems.core.identifiers import MalformedIdentifier
from rems.program.programs import BUNDLED, program_load


class Command(BaseCommand):
    help = "Load a program, its products and its rule sets from a JSON file (or a bundled program by name)."

    def add_arguments(self, parser):
        parser.add_argument("source", help="a JSON file, or the name of a bundled program such as pomalidomide")

    def handle(self, *args, source, **options):
        path = Path(source)
        if not path.exists():
            path = BUNDLED / f"{source}.json"
        if not path.exists():
            raise CommandError(f"No such file or bundled program: {source}")
        try:
            data = json.loads(path.read_text())
            program, loaded = program_load(actor=None, data=data, now=timezone.now())
        except (ValueError, ActionRefused, MalformedIdentifier) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{program.slug}: " + (f"loaded {', '.join(loaded)}" if loaded else "up to date"))
