-- A coordinator a team shares (server/access/users.h, policy.h). Every sweep records who
-- submitted it ('' for sweeps from before users existed: they count as the admin's); every worker
-- records the user whose token registered it, so another worker token cannot act for it.
ALTER TABLE sweeps ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE workers ADD COLUMN registered_by TEXT NOT NULL DEFAULT '';
-- The audit trail: who did what to which sweep, job or worker, when, from where, allowed or
-- denied (and the rule that denied it). Append-only: the triggers refuse any change or removal.
CREATE TABLE audit (
  id      INTEGER PRIMARY KEY,
  at_ms   INTEGER NOT NULL,
  user    TEXT    NOT NULL,   -- '' for a caller with no valid token
  role    TEXT    NOT NULL,   -- admin | researcher | viewer | worker | '' (no valid token)
  action  TEXT    NOT NULL,   -- submit, cancel, retry, drain, register, lease, complete, read, ...
  target  TEXT    NOT NULL,   -- 'sweep 3', 'job 17', 'worker node7-123', '' for none
  peer    TEXT    NOT NULL,   -- the caller's address as the transport gives it
  allowed INTEGER NOT NULL,
  detail  TEXT    NOT NULL    -- what happened, or the rule that refused it
);
CREATE INDEX audit_by_time ON audit(at_ms);
CREATE INDEX audit_by_user ON audit(user, at_ms);
CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
