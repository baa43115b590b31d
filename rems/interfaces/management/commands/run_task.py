import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from dispensing.reminders import plan_reminders
from dispensing.sweeps import expire_lapsed
from rems.program.notifications import deliver_due

# The services the periodic tasks call (`rems.interfaces.tasks`), by the task's short name.
TASKS = {
    "expire_lapsed": lambda now: expire_lapsed(now=now, workers=settings.REMS_SWEEP_WORKERS),
    "plan_reminders": lambda now: plan_reminders(now=now),
    "deliver_due": lambda now: deliver_due(now=now),
}


class Command(BaseCommand):
    help = "Run one periodic task once, now, in this process: " + ", ".join(TASKS) + "."

    def add_arguments(self, parser):
        parser.add_argument("task", choices=sorted(TASKS))

    def handle(self, *args, task, **options):
        if task not in TASKS:
            raise CommandError(f"Unknown task {task!r}.")
        self.stdout.write(json.dumps(TASKS[task](timezone.now()), default=str))
