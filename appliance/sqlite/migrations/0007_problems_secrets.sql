-- Ready checks (SPEC §3, §4): why a phone could not work as configured, a
-- JSON array of sentences ('[]' when ready), recomputed with its config
-- version.
ALTER TABLE phones ADD COLUMN problems TEXT NOT NULL DEFAULT '[]';

-- Secrets provbox generates once per installation, e.g. the phones' web
-- admin password (name 'phone_admin_password').
CREATE TABLE secrets (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
