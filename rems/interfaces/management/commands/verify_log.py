import json
from dataclasses import asdict
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from rems.compliance_log.verify import log_verify


def _moment(text):
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"Not an RFC 3339 time: {text!r}") from None
    if moment.tzinfo is None:
        raise CommandError(f"Give {text!r} with its offset, e.g. 2026-11-01T00:00:00Z.")
    return moment


class Command(BaseCommand):
    help = ("Verify the compliance log's hash chains, whole or for a time range, and the whole log against its newest "
            "signed checkpoint; report the first broken entry, every contradiction, and entries whose time is far "
            "from when they were written. Exits 1 when the log does not verify, 2 when it does but has flagged "
            "entries or its newest checkpoint was stale.")

    def add_arguments(self, parser):
        parser.add_argument("--since", type=_moment, help="first time to verify (inclusive), RFC 3339")
        parser.add_argument("--until", type=_moment, help="time to verify up to (exclusive), RFC 3339")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, since=None, until=None, **options):
        result = log_verify(since=since, until=until)
        if options["json"]:
            self.stdout.write(json.dumps(asdict(result)))
        else:
            self._report(result)
        if not result.ok:
            raise SystemExit(1)
        if result.flagged or result.checkpoint_stale:
            raise SystemExit(2)

    def _report(self, result):
        if result.ok:
            self.stdout.write(f"ok: {result.entries_checked} entries in {result.chains} chains verified")
        elif b := result.first_break:
            self.stdout.write(
                f"BROKEN at entry {b.id} (seq {b.seq}, {b.occurred_at}, chain {b.chain} index {b.chain_index}): "
                f"{b.reason}; {result.entries_checked} entries checked"
            )
        for contradiction in result.contradictions:
            self.stdout.write(f"CONTRADICTS A CHECKPOINT: {contradiction}")
        if result.checkpoint_error:
            self.stdout.write(f"CHECKPOINTS: {result.checkpoint_error}")
        if result.checkpoint_stale:
            self.stdout.write(f"STALE CHECKPOINTS: {result.checkpoint_stale}")
        if result.checkpoint_written:
            self.stdout.write(f"compared with checkpoint {result.checkpoint or '(none yet)'}; "
                              f"wrote checkpoint {result.checkpoint_written}")
        if f := result.first_flagged:
            noun = "entry" if result.flagged == 1 else "entries"
            self.stdout.write(f"FLAGGED: {result.flagged} {noun} with a time far from when it was written; first: "
                              f"{f.id} (seq {f.seq}, {f.occurred_at}): {f.reason}")
