-- Settings an admin changed on the Settings page (appliance.SettingsOverrides
-- as JSON); they win over the config file, which row 1 of settings holds.
CREATE TABLE settings_overrides (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	value TEXT NOT NULL
);
