-- The engine's own words about a failed allocation, read once when it fails: for Slurm the last
-- lines of its output file (slurmstepd's "execve(): worker: No such file or directory"), for
-- Kubernetes the pod's status reason, its last events and its log tail. Bounded (4 KiB) by the
-- engine; '' while the allocation has not failed or the engine had nothing to say.
ALTER TABLE allocations ADD COLUMN engine_output TEXT NOT NULL DEFAULT '';
