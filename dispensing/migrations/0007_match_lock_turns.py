from django.db import migrations

# The failed-match limits' two functions (dispensing/match_locks.py says how they are used):
# - rems_match_lock_in_force: the lock refusing a pharmacy's requests for a number (a `birth_date` lock for that
#   number, or an `authorization_number` lock for every number), if any; the one place this rule is written.
# - rems_match_turn: the pharmacy's turn at its counters (a transaction-level advisory lock, exclusive for a failed
#   match, shared for any other answer), then the lock in force as it stands once the turn is granted. VOLATILE, so
#   its query reads with a snapshot taken after the turn, not the calling statement's.
FUNCTIONS = """
CREATE OR REPLACE FUNCTION rems_match_lock_in_force(p_pharmacy uuid, p_number text)
RETURNS TABLE (kind text, failures integer) LANGUAGE sql STABLE AS $$
  SELECT m.kind::text, m.failures::integer FROM dispensing_matchlock m
   WHERE m.pharmacy_id = p_pharmacy AND m.cleared_at IS NULL AND m.locked_at IS NOT NULL
     AND (m.kind = 'authorization_number' OR (m.kind = 'birth_date' AND m.authorization_number = p_number))
   ORDER BY m.kind LIMIT 1
$$;

CREATE OR REPLACE FUNCTION rems_match_turn(p_pharmacy uuid, p_number text, p_failed boolean)
RETURNS TABLE (kind text, failures integer) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF p_failed THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('match:' || p_pharmacy::text, 0));
  ELSE
    PERFORM pg_advisory_xact_lock_shared(hashtextextended('match:' || p_pharmacy::text, 0));
  END IF;
  RETURN QUERY SELECT l.kind, l.failures FROM rems_match_lock_in_force(p_pharmacy, p_number) l;
END
$$;
"""

UNDO = """
DROP FUNCTION IF EXISTS rems_match_turn(uuid, text, boolean);
DROP FUNCTION IF EXISTS rems_match_lock_in_force(uuid, text);
"""


class Migration(migrations.Migration):
    dependencies = [("dispensing", "0006_drop_unused_indexes")]

    operations = [migrations.RunSQL(FUNCTIONS, UNDO)]
