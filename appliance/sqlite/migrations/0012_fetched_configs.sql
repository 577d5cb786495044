-- What each phone last fetched (its <mac>.cfg as served), one row per
-- phone, rewritten only when it fetches another version: the phone page
-- shows what changed since (SPEC §4, config view).
CREATE TABLE fetched_configs (
	phone_id INTEGER PRIMARY KEY REFERENCES phones (id) ON DELETE CASCADE,
	version  TEXT NOT NULL,
	body     BLOB NOT NULL,
	at       INTEGER NOT NULL
);
