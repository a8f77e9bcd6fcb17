-- A sweep's health rules (sweep_file/health_spec.h), fixed with the sweep: its health section as
-- JSON. '' (sweeps stored before rules existed): none.
ALTER TABLE sweeps ADD COLUMN health TEXT NOT NULL DEFAULT '';
