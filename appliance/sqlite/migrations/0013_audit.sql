-- The audit trail (SPEC §4, GET /api/v1/audit): one row per change, written
-- in the change's own transaction. changes is a JSON array of
-- {"field", "before", "after"}; secrets are never in it. Kept for a year
-- or the newest 100,000 entries.
CREATE TABLE audit (
	id      INTEGER PRIMARY KEY,
	at      INTEGER NOT NULL,
	actor   TEXT NOT NULL,
	action  TEXT NOT NULL,
	object  TEXT NOT NULL DEFAULT '',
	changes TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX audit_at ON audit (at);

-- The phones an entry moved to a new config version (or, for a resync,
-- told to sync), as they were then, and how far the change got: reached
-- when the phone fetched that version or a later one, confirmed when it
-- reported applying it. phone_id goes NULL when the phone is deleted (its
-- rows stay, by MAC and name). The partial indexes keep the marking on
-- every fetch and report to the few rows still waiting.
CREATE TABLE audit_phones (
	audit_id     INTEGER NOT NULL REFERENCES audit (id) ON DELETE CASCADE,
	phone_id     INTEGER REFERENCES phones (id) ON DELETE SET NULL,
	mac          TEXT NOT NULL,
	name         TEXT NOT NULL,
	version      TEXT NOT NULL,
	reached_at   INTEGER,
	confirmed_at INTEGER,
	PRIMARY KEY (audit_id, mac)
) WITHOUT ROWID;
CREATE INDEX audit_phones_phone ON audit_phones (phone_id);
CREATE INDEX audit_phones_unreached ON audit_phones (phone_id, audit_id) WHERE reached_at IS NULL;
CREATE INDEX audit_phones_unconfirmed ON audit_phones (phone_id, audit_id) WHERE confirmed_at IS NULL;
