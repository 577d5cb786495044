-- Discovered under abuse (SPEC §9): at most 60 new rows a minute per source
-- address (counted by ip and first_seen) and at most 10,000 rows, the
-- least recently seen dropped first (last_seen).
CREATE INDEX discovered_ip_first ON discovered (ip, first_seen);
CREATE INDEX discovered_last ON discovered (last_seen);
