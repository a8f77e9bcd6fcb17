-- Events a researcher is told about (server/events/, docs/deploy.md "Notifications"): a sweep
-- finished, jobs failed for good, a health rule fired, no worker heard from for a while. Kept
-- for sweepctl watch, the sweep page and webhook delivery; the newest 10,000 are kept.
CREATE TABLE events (
  id       INTEGER PRIMARY KEY,
  at_ms    INTEGER NOT NULL,
  kind     TEXT    NOT NULL,          -- sweep-finished | jobs-failed | health-rule | no-worker
  sweep_id INTEGER,                   -- NULL: the coordinator's own (no-worker)
  text     TEXT    NOT NULL,          -- one line for people (a Slack message's text)
  detail   TEXT    NOT NULL,          -- JSON: the event's facts (ids, counts, reasons)
  once_key TEXT UNIQUE                -- an event that must be written once ("health:JOB:RULE")
);
CREATE INDEX events_by_sweep ON events(sweep_id, id);
-- Webhook deliveries, one per event and URL, made by the notifier from events it has not yet
-- queued (event_marks 'queued-through'): retried with backoff, then given up with the reason.
CREATE TABLE event_deliveries (
  id              INTEGER PRIMARY KEY,
  event_id        INTEGER NOT NULL,
  url             TEXT    NOT NULL,
  state           TEXT    NOT NULL,   -- pending | delivered | given-up
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL,
  last_error      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX event_deliveries_due ON event_deliveries(state, next_attempt_ms);
CREATE INDEX event_deliveries_by_event ON event_deliveries(event_id);
-- Named marks of the event machinery: 'queued-through' (the last event given deliveries),
-- 'no-worker-since' (the outage last announced).
CREATE TABLE event_marks (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
-- What has been announced, so that an event is written once across restarts: a FAILED job whose
-- updated_ms is past failure_announced_ms is news, and a finished sweep whose last job change is
-- past finish_announced_ms. Rows from before events existed are not news.
ALTER TABLE jobs ADD COLUMN failure_announced_ms INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET failure_announced_ms = updated_ms WHERE state = 'FAILED';
ALTER TABLE sweeps ADD COLUMN finish_announced_ms INTEGER NOT NULL DEFAULT 0;
UPDATE sweeps SET finish_announced_ms =
  COALESCE((SELECT MAX(updated_ms) FROM jobs WHERE jobs.sweep_id = sweeps.id), 0);
-- A sweep's own webhook URLs (its file's notify:, sweep_file/notify_spec.h): a JSON list; ''
-- for none.
ALTER TABLE sweeps ADD COLUMN notify TEXT NOT NULL DEFAULT '';
