-- Per-phone provisioning secrets (SPEC §5): a phone's <mac>.cfg is served
-- only to a request with its own secret (HTTP Basic, user name = MAC),
-- except for one fetch without it while its claim window is open.
-- Existing phones get a secret (and a claim window, so the phone can fetch
-- the file that carries it) when the store opens (DB.Open).
ALTER TABLE phones ADD COLUMN secret TEXT NOT NULL DEFAULT '';
-- The secret before the last rotation, accepted until the phone fetches
-- with the new one.
ALTER TABLE phones ADD COLUMN prev_secret TEXT NOT NULL DEFAULT '';
-- Unix ms the claim window closes; NULL: closed.
ALTER TABLE phones ADD COLUMN claim_until INTEGER;
