-- Retention of the audit trail (coordinator --audit-retention, docs/deploy.md): rows older than
-- the retention may be deleted, and nothing else. The coordinator writes the cutoff it prunes to
-- into audit_retention (one row); the delete trigger refuses any row at or after that cutoff, and
-- every row when none is written. A cutoff within the last day is refused outright, so no code
-- path and no mistaken flag can empty the recent trail. Updates stay forbidden (008).
CREATE TABLE audit_retention (
  id        INTEGER PRIMARY KEY CHECK (id = 1),
  cutoff_ms INTEGER NOT NULL
);
CREATE TRIGGER audit_retention_keeps_a_day_insert BEFORE INSERT ON audit_retention
WHEN new.cutoff_ms > CAST(strftime('%s', 'now') AS INTEGER) * 1000 - 86400000
BEGIN SELECT RAISE(ABORT, 'audit retention: the cutoff must be at least a day in the past'); END;
CREATE TRIGGER audit_retention_keeps_a_day_update BEFORE UPDATE ON audit_retention
WHEN new.cutoff_ms > CAST(strftime('%s', 'now') AS INTEGER) * 1000 - 86400000
BEGIN SELECT RAISE(ABORT, 'audit retention: the cutoff must be at least a day in the past'); END;
DROP TRIGGER audit_is_append_only_delete;
CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
WHEN old.at_ms >= COALESCE((SELECT cutoff_ms FROM audit_retention WHERE id = 1), -1)
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: only rows older than the retention may be pruned'); END;
