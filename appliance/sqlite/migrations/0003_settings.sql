-- The appliance-wide settings in force (appliance.Settings as JSON), so that
-- every process on this database (serve and the CLI) renders the same files.
CREATE TABLE settings (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	value TEXT NOT NULL
);
