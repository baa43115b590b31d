"""The SQL that makes the compliance log append-only and tamper-evident. Applied by migrations only.

- `rems_log_content_v1(entry)`: the hash of an entry's content, from a canonical text (jsonb's own text form of
  an array of the fields; the time as microseconds since the epoch, so no session setting changes it).
- `rems_log_append()`: BEFORE INSERT. Whatever the inserter gave, it sets the content hash, picks the chain of
  the inserting transaction (txid modulo the number of chains, so one transaction holds one chain head and two
  transactions never wait on each other in opposite orders), advances that chain's head and links the entry:
  entry_hash = sha256(previous entry_hash || content_hash). SECURITY DEFINER: the application's role has no
  right on the chain heads.
- `rems_log_refuse()`: refuses UPDATE, DELETE and TRUNCATE for everyone. The table owner may TRUNCATE only in a
  session that set `rems.allow_log_truncate = on` (used to reset test databases); the application's role has
  no TRUNCATE right at all.
- The role `rems_app`: what the application runs as. It may read and write the application's tables, but only
  SELECT and INSERT the compliance log.
"""

CHAINS = 16
GENESIS = "0" * 64

CONTENT_FUNCTION = """
CREATE OR REPLACE FUNCTION rems_log_content_v1(e rems_compliancelogentry) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT encode(sha256(convert_to(jsonb_build_array(
    e.id, (extract(epoch FROM e.occurred_at) * 1000000)::bigint, e.action, e.outcome,
    e.actor_user_id, e.actor_username, e.actor_role, e.actor_prescriber_id, e.actor_pharmacy_id,
    e.program, e.object_type, e.object_id, e.patient_id, e.prescriber_id, e.pharmacy_id, e.prescription_id,
    e.rule_set, e.checks, e.facts, e.detail, e.request_id
  )::text, 'UTF8')), 'hex')
$$;
"""

LINK_FUNCTION = """
CREATE OR REPLACE FUNCTION rems_log_link(previous text, content text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT encode(sha256(convert_to(previous || content, 'UTF8')), 'hex')
$$;
"""

APPEND_FUNCTION = f"""
CREATE OR REPLACE FUNCTION rems_log_append() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  target smallint := (txid_current() % {CHAINS})::smallint;
  head record;
BEGIN
  NEW.content_hash := rems_log_content_v1(NEW);
  UPDATE rems_logchainhead
     SET last_index = last_index + 1, last_hash = rems_log_link(last_hash, NEW.content_hash)
   WHERE chain = target
  RETURNING chain, last_index, last_hash INTO head;
  IF NOT FOUND THEN
    INSERT INTO rems_logchainhead (chain, last_index, last_hash) VALUES (target, 0, '{GENESIS}')
    ON CONFLICT (chain) DO NOTHING;
    UPDATE rems_logchainhead
       SET last_index = last_index + 1, last_hash = rems_log_link(last_hash, NEW.content_hash)
     WHERE chain = target
    RETURNING chain, last_index, last_hash INTO head;
  END IF;
  NEW.chain := head.chain;
  NEW.chain_index := head.last_index;
  NEW.entry_hash := head.last_hash;
  RETURN NEW;
END
$$;
"""

REFUSE_FUNCTION = """
CREATE OR REPLACE FUNCTION rems_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE'
     AND current_setting('rems.allow_log_truncate', true) = 'on'
     AND current_user = (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID) THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'the compliance log is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
"""

TRIGGERS = """
DROP TRIGGER IF EXISTS rems_log_append ON rems_compliancelogentry;
CREATE TRIGGER rems_log_append BEFORE INSERT ON rems_compliancelogentry
  FOR EACH ROW EXECUTE FUNCTION rems_log_append();
DROP TRIGGER IF EXISTS rems_log_refuse_change ON rems_compliancelogentry;
CREATE TRIGGER rems_log_refuse_change BEFORE UPDATE OR DELETE ON rems_compliancelogentry
  FOR EACH ROW EXECUTE FUNCTION rems_log_refuse();
DROP TRIGGER IF EXISTS rems_log_refuse_truncate ON rems_compliancelogentry;
CREATE TRIGGER rems_log_refuse_truncate BEFORE TRUNCATE ON rems_compliancelogentry
  FOR EACH STATEMENT EXECUTE FUNCTION rems_log_refuse();
"""

DROP = """
DROP TRIGGER IF EXISTS rems_log_append ON rems_compliancelogentry;
DROP TRIGGER IF EXISTS rems_log_refuse_change ON rems_compliancelogentry;
DROP TRIGGER IF EXISTS rems_log_refuse_truncate ON rems_compliancelogentry;
DROP FUNCTION IF EXISTS rems_log_append();
DROP FUNCTION IF EXISTS rems_log_refuse();
DROP FUNCTION IF EXISTS rems_log_content_v1(rems_compliancelogentry);
DROP FUNCTION IF EXISTS rems_log_link(text, text);
"""

# Entries written before the chain existed are linked, in order, into chain 0.
BACKFILL = f"""
DO $$
DECLARE
  e rems_compliancelogentry;
  n bigint := 0;
  previous text := '{GENESIS}';
  content text;
BEGIN
  FOR e IN SELECT * FROM rems_compliancelogentry ORDER BY seq LOOP
    n := n + 1;
    content := rems_log_content_v1(e);
    previous := rems_log_link(previous, content);
    UPDATE rems_compliancelogentry SET chain = 0, chain_index = n, content_hash = content, entry_hash = previous
     WHERE seq = e.seq;
  END LOOP;
  IF n > 0 THEN
    INSERT INTO rems_logchainhead (chain, last_index, last_hash) VALUES (0, n, previous);
  END IF;
END
$$;
"""

APP_ROLE = "rems_app"

# The role is created where the migrating user may create roles; elsewhere a database administrator creates it
# (see docs/operations.md) and the grants below are skipped with a notice.
GRANTS = f"""
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
    IF (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
      CREATE ROLE {APP_ROLE} NOLOGIN;
    ELSE
      RAISE NOTICE 'role {APP_ROLE} does not exist and % may not create it: grants skipped', current_user;
      RETURN;
    END IF;
  END IF;
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO {APP_ROLE}', current_database());
  GRANT USAGE ON SCHEMA public TO {APP_ROLE};
  GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE};
  GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE};
  ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE};
  ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE};
  REVOKE UPDATE, DELETE, TRUNCATE ON rems_compliancelogentry FROM {APP_ROLE};
  REVOKE ALL ON rems_logchainhead FROM {APP_ROLE};
END
$$;
"""

# Verification compares each chain's end with its head; the application's role may read the heads only through
# this function.
HEADS_FUNCTION = """
CREATE OR REPLACE FUNCTION rems_log_heads() RETURNS TABLE (chain smallint, last_index bigint, last_hash text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT chain::smallint, last_index, last_hash::text FROM rems_logchainhead
$$;
"""

# Version 2 of the content hash also covers the entry's sequence number and the server time of its insert, so
# that entries can be neither reordered nor backdated without breaking the chain. Entries written before keep
# version 1; `rems_log_content` picks the version each entry was hashed with.
CONTENT_FUNCTION_V2 = """
CREATE OR REPLACE FUNCTION rems_log_content_v2(e rems_compliancelogentry) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT encode(sha256(convert_to(jsonb_build_array(
    e.id, (extract(epoch FROM e.occurred_at) * 1000000)::bigint, e.action, e.outcome,
    e.actor_user_id, e.actor_username, e.actor_role, e.actor_prescriber_id, e.actor_pharmacy_id,
    e.program, e.object_type, e.object_id, e.patient_id, e.prescriber_id, e.pharmacy_id, e.prescription_id,
    e.rule_set, e.checks, e.facts, e.detail, e.request_id,
    e.seq, (extract(epoch FROM e.recorded_at) * 1000000)::bigint
  )::text, 'UTF8')), 'hex')
$$;

CREATE OR REPLACE FUNCTION rems_log_content(e rems_compliancelogentry) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE e.hash_version WHEN 1 THEN rems_log_content_v1(e) ELSE rems_log_content_v2(e) END
$$;
"""

APPEND_FUNCTION_V2 = APPEND_FUNCTION.replace(
    "  NEW.content_hash := rems_log_content_v1(NEW);",
    "  NEW.recorded_at := clock_timestamp();\n  NEW.hash_version := 2;\n  NEW.content_hash := rems_log_content(NEW);",
)
assert APPEND_FUNCTION_V2 != APPEND_FUNCTION

# The chain head of a transaction is kept in a transaction-local setting while it appends, and written once, at
# commit, by a deferred trigger: a transaction that appends many entries (a sweep's batch) updates the head row
# once instead of once per entry. The head row is locked at the first append until commit, as before.
# No SET clause on these functions: a SET clause would confine the transaction-local setting to the call.
APPEND_FUNCTION_V3 = f"""
CREATE OR REPLACE FUNCTION rems_log_append() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  target smallint := (txid_current() % {CHAINS})::smallint;
  state text := current_setting('rems.log_head', true);
  idx bigint;
  previous text;
BEGIN
  NEW.recorded_at := clock_timestamp();
  NEW.hash_version := 2;
  NEW.content_hash := public.rems_log_content(NEW);
  IF coalesce(state, '') = '' THEN
    SELECT h.last_index, h.last_hash INTO idx, previous FROM public.rems_logchainhead h
     WHERE h.chain = target FOR UPDATE;
    IF NOT FOUND THEN
      INSERT INTO public.rems_logchainhead (chain, last_index, last_hash) VALUES (target, 0, '{GENESIS}')
      ON CONFLICT (chain) DO NOTHING;
      SELECT h.last_index, h.last_hash INTO idx, previous FROM public.rems_logchainhead h
       WHERE h.chain = target FOR UPDATE;
    END IF;
  ELSE
    idx := split_part(state, ':', 1)::bigint;
    previous := split_part(state, ':', 2);
  END IF;
  idx := idx + 1;
  previous := public.rems_log_link(previous, NEW.content_hash);
  PERFORM set_config('rems.log_head', idx::text || ':' || previous, true);
  NEW.chain := target;
  NEW.chain_index := idx;
  NEW.entry_hash := previous;
  RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION rems_log_write_head() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  state text := current_setting('rems.log_head', true);
BEGIN
  IF coalesce(state, '') <> '' THEN
    UPDATE public.rems_logchainhead
       SET last_index = split_part(state, ':', 1)::bigint, last_hash = split_part(state, ':', 2)
     WHERE chain = NEW.chain;
    PERFORM set_config('rems.log_head', '', true);
  END IF;
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS rems_log_write_head ON rems_compliancelogentry;
CREATE CONSTRAINT TRIGGER rems_log_write_head AFTER INSERT ON rems_compliancelogentry
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION rems_log_write_head();
"""

UNDO_APPEND_FUNCTION_V3 = """
DROP TRIGGER IF EXISTS rems_log_write_head ON rems_compliancelogentry;
DROP FUNCTION IF EXISTS rems_log_write_head();
""" + APPEND_FUNCTION_V2


# Version 4: nothing a session can set is trusted, and the chain heads change only through the log's triggers.
# - Before each INSERT statement, `rems_log_statement_start()` clears the transaction's head state, so the first
#   row of every statement reads its chain's head from the table (locking it until commit), whatever a session
#   put in `rems.log_head` before.
# - Within a statement, each row continues from the row before it (kept in `rems.log_head`, tagged with the
#   transaction id), as in version 3.
# - After each INSERT statement, `rems_log_statement_end()` checks every row the statement added against the
#   head it started from (consecutive indexes, each hash linked to the one before) and only then moves the head
#   to the statement's last row. A session that changed the state between rows makes its own statement fail;
#   it can neither skip a link nor move a head.
# - `rems_log_head_guard()` refuses every change to `rems_logchainhead` except those made by these triggers.
APPEND_FUNCTION_V4 = f"""
CREATE OR REPLACE FUNCTION rems_log_statement_start() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
  PERFORM set_config('rems.log_head', '', true);
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION rems_log_append() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  tx bigint := txid_current();
  target smallint := (tx % {CHAINS})::smallint;
  state text := coalesce(current_setting('rems.log_head', true), '');
  idx bigint;
  previous text;
BEGIN
  NEW.recorded_at := clock_timestamp();
  NEW.hash_version := 2;
  NEW.content_hash := public.rems_log_content(NEW);
  IF split_part(state, ':', 1) = tx::text THEN
    idx := split_part(state, ':', 2)::bigint;
    previous := split_part(state, ':', 3);
  ELSE
    SELECT h.last_index, h.last_hash INTO idx, previous FROM public.rems_logchainhead h
     WHERE h.chain = target FOR UPDATE;
    IF NOT FOUND THEN
      INSERT INTO public.rems_logchainhead (chain, last_index, last_hash) VALUES (target, 0, '{GENESIS}')
      ON CONFLICT (chain) DO NOTHING;
      SELECT h.last_index, h.last_hash INTO idx, previous FROM public.rems_logchainhead h
       WHERE h.chain = target FOR UPDATE;
    END IF;
  END IF;
  idx := idx + 1;
  previous := public.rems_log_link(previous, NEW.content_hash);
  PERFORM set_config('rems.log_head', tx::text || ':' || idx::text || ':' || previous, true);
  NEW.chain := target;
  NEW.chain_index := idx;
  NEW.entry_hash := previous;
  RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION rems_log_statement_end() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  target smallint := (txid_current() % {CHAINS})::smallint;
  head_index bigint;
  head_hash text;
  added_count bigint;
  linked bigint;
  new_index bigint;
  new_hash text;
BEGIN
  SELECT h.last_index, h.last_hash INTO head_index, head_hash FROM public.rems_logchainhead h
   WHERE h.chain = target FOR UPDATE;
  IF NOT FOUND THEN
    head_index := 0;
    head_hash := '{GENESIS}';
  END IF;
  SELECT count(*),
         count(*) FILTER (WHERE r.chain = target
                            AND r.chain_index = coalesce(r.before_index, head_index) + 1
                            AND r.entry_hash = public.rems_log_link(coalesce(r.before_hash, head_hash), r.content_hash)),
         max(r.chain_index)
    INTO added_count, linked, new_index
    FROM (SELECT a.chain, a.chain_index, a.content_hash, a.entry_hash,
                 lag(a.chain_index) OVER w AS before_index, lag(a.entry_hash) OVER w AS before_hash
            FROM added a WINDOW w AS (ORDER BY a.chain_index)) r;
  PERFORM set_config('rems.log_head', '', true);
  IF added_count = 0 THEN
    RETURN NULL;
  END IF;
  IF linked <> added_count THEN
    RAISE EXCEPTION 'compliance log: the entries of this statement do not continue chain % from its head', target
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  SELECT a.entry_hash INTO new_hash FROM added a WHERE a.chain_index = new_index;
  UPDATE public.rems_logchainhead SET last_index = new_index, last_hash = new_hash WHERE chain = target;
  RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS rems_log_write_head ON rems_compliancelogentry;
DROP FUNCTION IF EXISTS rems_log_write_head();
DROP TRIGGER IF EXISTS rems_log_statement_start ON rems_compliancelogentry;
CREATE TRIGGER rems_log_statement_start BEFORE INSERT ON rems_compliancelogentry
  FOR EACH STATEMENT EXECUTE FUNCTION rems_log_statement_start();
DROP TRIGGER IF EXISTS rems_log_statement_end ON rems_compliancelogentry;
CREATE TRIGGER rems_log_statement_end AFTER INSERT ON rems_compliancelogentry
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION rems_log_statement_end();
"""

UNDO_APPEND_FUNCTION_V4 = """
DROP TRIGGER IF EXISTS rems_log_statement_start ON rems_compliancelogentry;
DROP TRIGGER IF EXISTS rems_log_statement_end ON rems_compliancelogentry;
DROP FUNCTION IF EXISTS rems_log_statement_start();
DROP FUNCTION IF EXISTS rems_log_statement_end();
""" + APPEND_FUNCTION_V3


def guard_functions(*, test_database):
    """The functions that refuse changes to the log and to its chain heads. Only a test database (`test_database`)
    gets the switch that lets the tables' owner empty both, in a session that set `rems.allow_log_truncate = on`,
    to reset the database between tests; anywhere else TRUNCATE is refused like every other change."""
    switch = """
  IF TG_OP = 'TRUNCATE'
     AND current_setting('rems.allow_log_truncate', true) = 'on'
     AND current_user = (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = TG_RELID) THEN
    RETURN NULL;
  END IF;""" if test_database else ""
    return f"""
CREATE OR REPLACE FUNCTION rems_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{switch}
  RAISE EXCEPTION 'the compliance log is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE OR REPLACE FUNCTION rems_log_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- A change made from within the log's own triggers (an append, or the end of an INSERT statement).
  IF TG_LEVEL = 'ROW' AND pg_trigger_depth() > 1 THEN
    RETURN NEW;
  END IF;{switch}
  RAISE EXCEPTION 'the compliance log''s chain heads move only when entries are appended: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER IF EXISTS rems_log_head_guard ON rems_logchainhead;
CREATE TRIGGER rems_log_head_guard BEFORE INSERT OR UPDATE OR DELETE ON rems_logchainhead
  FOR EACH ROW EXECUTE FUNCTION rems_log_head_guard();
DROP TRIGGER IF EXISTS rems_log_head_guard_truncate ON rems_logchainhead;
CREATE TRIGGER rems_log_head_guard_truncate BEFORE TRUNCATE ON rems_logchainhead
  FOR EACH STATEMENT EXECUTE FUNCTION rems_log_head_guard();
"""


UNDO_GUARD_FUNCTIONS = """
DROP TRIGGER IF EXISTS rems_log_head_guard ON rems_logchainhead;
DROP TRIGGER IF EXISTS rems_log_head_guard_truncate ON rems_logchainhead;
DROP FUNCTION IF EXISTS rems_log_head_guard();
""" + REFUSE_FUNCTION

# The application's role acts through SET ROLE from the connecting user; it never logs in itself.
APP_ROLE_NOLOGIN = f"""
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}' AND rolcanlogin)
     AND (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
    ALTER ROLE {APP_ROLE} NOLOGIN;
  END IF;
END
$$;
"""
