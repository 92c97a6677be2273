-- Keyward catalog, schema 7: what each key's provider says about its last use (AWS's
-- GetAccessKeyLastUsed), asked by the agent about once a day. Not secret and not sealed: editing
-- it changes what "last used" and the unused rule see, as editing entries.last_used does.
CREATE TABLE provider_use (
    entry_id TEXT PRIMARY KEY REFERENCES entries (id) ON DELETE CASCADE,
    used     TEXT,
    service  TEXT,
    region   TEXT,
    checked  TEXT NOT NULL,
    error    TEXT
);
