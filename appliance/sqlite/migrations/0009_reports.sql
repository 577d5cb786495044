-- The phone's own reports (SPEC §6): its config carries action URLs
-- /prov/ev/<token>/<event>; "synced" now means the phone fetched the
-- current version and then reported that provisioning finished.
-- A random token per phone names it in its reports (not its secret: action
-- URLs can show in logs). Existing phones get one when the store opens,
-- like their secrets.
ALTER TABLE phones ADD COLUMN token TEXT NOT NULL DEFAULT '';
ALTER TABLE phones ADD COLUMN prev_token TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX phones_token ON phones (token) WHERE token != '';
CREATE INDEX phones_prev_token ON phones (prev_token) WHERE prev_token != '';
-- 1 once the phone has reported: only such a phone becomes synced or stuck.
ALTER TABLE phones ADD COLUMN confirms INTEGER NOT NULL DEFAULT 0;
-- Unix ms: the last "provisioned" report after fetching the current
-- version; the last report of any kind.
ALTER TABLE phones ADD COLUMN applied_at INTEGER;
ALTER TABLE phones ADD COLUMN last_report_at INTEGER;
-- A hash of what the phone's accounts register with (AccountsHash), now
-- and in the version it last fetched: a fetch that changes them makes the
-- phone re-register, and its registration reports confirm the change.
ALTER TABLE phones ADD COLUMN accounts_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE phones ADD COLUMN fetched_accounts_hash TEXT NOT NULL DEFAULT '';
-- Unix ms by which a phone that confirms must report, else it is stuck;
-- NULL: no report awaited.
ALTER TABLE phones ADD COLUMN report_due INTEGER;
CREATE INDEX phones_report_due ON phones (report_due) WHERE report_due IS NOT NULL;
-- "synced" used to mean "fetched the current version": without a report
-- that is now "fetched".
UPDATE phones SET state = 'fetched' WHERE state = 'synced';

-- Each account's registration as the phone reported it.
CREATE TABLE phone_registrations (
	phone_id INTEGER NOT NULL REFERENCES phones (id) ON DELETE CASCADE,
	account  INTEGER NOT NULL,
	state    TEXT NOT NULL CHECK (state IN ('registered', 'failed', 'unknown')),
	at       INTEGER NOT NULL,
	PRIMARY KEY (phone_id, account)
);

-- The timeline: a phone's last few config changes and how far each got.
CREATE TABLE phone_changes (
	id            INTEGER PRIMARY KEY,
	phone_id      INTEGER NOT NULL REFERENCES phones (id) ON DELETE CASCADE,
	version       TEXT NOT NULL,
	changed_at    INTEGER NOT NULL,
	triggered_at  INTEGER,
	trigger       TEXT NOT NULL DEFAULT '',
	fetched_at    INTEGER,
	applied_at    INTEGER,
	registered_at INTEGER,
	outcome       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX phone_changes_phone ON phone_changes (phone_id, id);
