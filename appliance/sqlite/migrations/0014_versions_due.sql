-- The phones whose config version is still to be recomputed after a change
-- (sqlite.go: a change commits first; the versions follow in a second
-- transaction). audit_id is the change's audit entry, which lists the phone
-- if its version moves; if_phones drops that entry when it lists no phone
-- at all. Rows left by a crash between the two are recomputed at the next
-- start.
CREATE TABLE versions_due (
	seq       INTEGER PRIMARY KEY,
	phone_id  INTEGER NOT NULL REFERENCES phones (id) ON DELETE CASCADE,
	audit_id  INTEGER REFERENCES audit (id) ON DELETE SET NULL,
	if_phones INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX versions_due_phone ON versions_due (phone_id);
CREATE INDEX versions_due_audit ON versions_due (audit_id);
