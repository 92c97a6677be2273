-- Keyward catalog, schema 5: `keyward audit` filters by event and by time on logs of a million
-- rows (the key filter has its index since schema 2).
CREATE INDEX audit_by_action ON audit (action, seq);
CREATE INDEX audit_by_ts ON audit (ts);
