-- Phones seen on the network but not provisioned (SPEC §5).
CREATE TABLE discovered (
	mac        TEXT PRIMARY KEY CHECK (length(mac) = 12),
	vendor     TEXT NOT NULL DEFAULT '',
	model      TEXT NOT NULL DEFAULT '',
	firmware   TEXT NOT NULL DEFAULT '',
	ip         TEXT NOT NULL DEFAULT '',
	source     TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT '',
	first_seen INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL,
	seen       INTEGER NOT NULL DEFAULT 1
);
