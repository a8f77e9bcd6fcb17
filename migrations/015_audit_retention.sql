-- Retention of the audit trail (coordinator --audit-retention, docs/deploy.md): rows older than
-- the configured retention may be deleted, and nothing else. The coordinator writes the retention
-- into audit_retention (one row, at least a day) before it prunes, and removes it when started
-- without the flag; the delete trigger refuses every row while none is written, and any row not
-- older than the retention by the database's own clock. Updates stay forbidden (008).
CREATE TABLE audit_retention (
  id           INTEGER PRIMARY KEY CHECK (id = 1),
  retention_ms INTEGER NOT NULL CHECK (retention_ms >= 86400000)
);
DROP TRIGGER audit_is_append_only_delete;
-- Milliseconds since the epoch: julianday('now') keeps them (strftime('%s') would not), and is
-- the same for every row of one statement, so a DELETE that uses the same expression agrees with it.
CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
WHEN (SELECT retention_ms FROM audit_retention WHERE id = 1) IS NULL
  OR old.at_ms >= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
                  - (SELECT retention_ms FROM audit_retention WHERE id = 1)
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: only rows older than --audit-retention may be pruned'); END;
