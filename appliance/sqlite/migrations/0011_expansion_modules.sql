-- Expansion modules (SPEC §3): a phone has 0..its model's maximum modules,
-- and a layout entry is on the phone itself (module 0) or on module N, so a
-- position is unique per phone and module.
ALTER TABLE phones ADD COLUMN expansion_modules INTEGER NOT NULL DEFAULT 0 CHECK (expansion_modules BETWEEN 0 AND 6);

CREATE TABLE layout_modules (
	phone_id INTEGER NOT NULL REFERENCES phones (id) ON DELETE CASCADE,
	module   INTEGER NOT NULL DEFAULT 0 CHECK (module BETWEEN 0 AND 6),
	position INTEGER NOT NULL CHECK (position >= 1),
	key_id   INTEGER NOT NULL REFERENCES keys (id),
	PRIMARY KEY (phone_id, module, position)
);
INSERT INTO layout_modules (phone_id, module, position, key_id) SELECT phone_id, 0, position, key_id FROM layout;
DROP TABLE layout;
ALTER TABLE layout_modules RENAME TO layout;
CREATE INDEX layout_key ON layout (key_id);
