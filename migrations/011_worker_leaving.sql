-- A worker that said it is leaving (HeartbeatRequest.leaving) and has not registered since: the
-- coordinator leases it nothing. Kept here, not in the coordinator's memory, so a coordinator
-- restarted while a worker shuts down still leases it nothing. Cleared when the worker registers.
ALTER TABLE workers ADD COLUMN leaving INTEGER NOT NULL DEFAULT 0;
