import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from rems.core.errors import ActionRefused
from rems.core.identifiers import MalformedIdentifier
from rems.program.programs import BUNDLED, program_load


class Command(BaseCommand):
    help = ("Load programs, their products and their rule sets from JSON files, or bundled programs by name "
            "(pomalidomide, lenalidomide, thalidomide, isotretinoin); --bundled loads every bundled program.")

    def add_arguments(self, parser):
        parser.add_argument("sources", nargs="*", help="JSON files, or names of bundled programs such as pomalidomide")
        parser.add_argument("--bundled", action="store_true", help="every program that comes with the service")

    def handle(self, *args, sources, bundled, **options):
        if bundled:
            sources = [*sources, *sorted(path.stem for path in BUNDLED.glob("*.json"))]
        if not sources:
            raise CommandError("Name a program file or a bundled program, or give --bundled.")
        for source in sources:
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
