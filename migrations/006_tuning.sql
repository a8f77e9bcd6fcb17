-- Adaptive sweeps (sweep_file/tune_spec.h, server/tuning/planner.h). A tuned sweep stores its
-- tune section as JSON ('' for a fixed sweep) and whether its planner may still add jobs; every
-- job says why it exists (role, and the planner's reason), and the planner's jobs carry a key
-- unique in their sweep, so that planning twice (two completions at once, a restart between a
-- completion and its planning) never adds a job twice.
ALTER TABLE sweeps ADD COLUMN tune TEXT NOT NULL DEFAULT '';
ALTER TABLE sweeps ADD COLUMN planning_open INTEGER NOT NULL DEFAULT 0;  -- 1: the planner is not done
ALTER TABLE jobs ADD COLUMN role TEXT NOT NULL DEFAULT 'grid';           -- grid | tuning | confirmation
ALTER TABLE jobs ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN stage INTEGER NOT NULL DEFAULT 0;            -- telescoping: width index
-- Early stopping asks a running tuning run to stop (cancel_requested) and says why here; the
-- worker's CANCELLED report of it is then stored as STOPPED with this message.
ALTER TABLE jobs ADD COLUMN stop_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN plan_key TEXT;                               -- NULL: expanded at submit
CREATE UNIQUE INDEX jobs_plan_key ON jobs(sweep_id, plan_key) WHERE plan_key IS NOT NULL;
