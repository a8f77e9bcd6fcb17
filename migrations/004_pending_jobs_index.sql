-- The scheduler reads the first pending job of every sweep (server/storage/worker_store.cpp, acquire_job); this
-- index makes that one ordered pass over pending jobs instead of a scan of every job.
CREATE INDEX jobs_pending ON jobs(state, backend, sweep_id, idx);
