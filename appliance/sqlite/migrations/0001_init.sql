-- Initial schema. Times are Unix milliseconds (NULL: never).
CREATE TABLE extensions (
	id         INTEGER PRIMARY KEY,
	number     TEXT NOT NULL UNIQUE,
	name       TEXT NOT NULL DEFAULT '',
	auth_user  TEXT NOT NULL,
	password   TEXT NOT NULL DEFAULT '',
	sip_server TEXT NOT NULL DEFAULT '',
	transport  TEXT NOT NULL DEFAULT 'udp' CHECK (transport IN ('udp', 'tcp', 'tls')),
	voicemail  TEXT NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

CREATE TABLE locations (
	id              INTEGER PRIMARY KEY,
	name            TEXT NOT NULL UNIQUE,
	street          TEXT NOT NULL DEFAULT '',
	city            TEXT NOT NULL DEFAULT '',
	region          TEXT NOT NULL DEFAULT '',
	postal_code     TEXT NOT NULL DEFAULT '',
	country         TEXT NOT NULL DEFAULT '',
	callback_number TEXT NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
);

-- keys: button configurations. An account key belongs to its extension
-- (extension_id set, unique) and goes with it.
CREATE TABLE keys (
	id           INTEGER PRIMARY KEY,
	type         TEXT NOT NULL CHECK (type IN ('account', 'blf', 'speed_dial', 'park', 'prefix')),
	value        TEXT NOT NULL,
	label        TEXT NOT NULL,
	extension_id INTEGER UNIQUE REFERENCES extensions (id) ON DELETE CASCADE,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL,
	CHECK ((type = 'account') = (extension_id IS NOT NULL))
);
CREATE INDEX keys_type_value ON keys (type, value);

CREATE TABLE phones (
	id                 INTEGER PRIMARY KEY,
	mac                TEXT NOT NULL UNIQUE CHECK (length(mac) = 12),
	name               TEXT NOT NULL,
	description        TEXT NOT NULL DEFAULT '',
	location_id        INTEGER REFERENCES locations (id),
	manufacturer       TEXT NOT NULL,
	model              TEXT NOT NULL,
	config_version     TEXT NOT NULL DEFAULT '',
	fetched_version    TEXT NOT NULL DEFAULT '',
	state              TEXT NOT NULL DEFAULT 'new',
	last_fetch_at      INTEGER,
	last_fetch_ip      TEXT NOT NULL DEFAULT '',
	last_fetch_ua      TEXT NOT NULL DEFAULT '',
	last_notify_at     INTEGER,
	last_notify_result TEXT NOT NULL DEFAULT '',
	sip_address        TEXT NOT NULL DEFAULT '',
	created_at         INTEGER NOT NULL,
	updated_at         INTEGER NOT NULL
);
CREATE INDEX phones_location ON phones (location_id);

CREATE TABLE layout (
	phone_id INTEGER NOT NULL REFERENCES phones (id) ON DELETE CASCADE,
	position INTEGER NOT NULL CHECK (position >= 1),
	key_id   INTEGER NOT NULL REFERENCES keys (id),
	PRIMARY KEY (phone_id, position)
);
CREATE INDEX layout_key ON layout (key_id);

CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	name          TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	created_at    INTEGER NOT NULL
);
