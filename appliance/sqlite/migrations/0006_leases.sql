-- DHCP (SPEC §7). leases: one row per address the DHCP server handed out,
-- as it last stood (bound until expires_at; released at expires_at;
-- declined: quarantined until expires_at, mac '' when a conflict check found
-- the address in use). Offers are not stored.
CREATE TABLE leases (
	ip         TEXT PRIMARY KEY,
	mac        TEXT NOT NULL DEFAULT '' CHECK (mac = '' OR length(mac) = 12),
	hostname   TEXT NOT NULL DEFAULT '',
	vendor     TEXT NOT NULL DEFAULT '',
	state      TEXT NOT NULL CHECK (state IN ('bound', 'released', 'declined')),
	expires_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- reservations: the fixed address a MAC (usually a phone's) always gets.
CREATE TABLE reservations (
	mac        TEXT PRIMARY KEY CHECK (length(mac) = 12),
	ip         TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL
);
