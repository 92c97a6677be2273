-- Keyward catalog, schema 6: each key's usage baseline, for "unusual use": the programs and
-- process chains it has served, and how many credentials it issued each day. Not secret, and not
-- a control: editing it only changes what is reported as unusual.
CREATE TABLE usage_seen (
    entry_id   TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    what       TEXT NOT NULL CHECK (what IN ('program', 'chain')),
    value      TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (entry_id, what, value)
);
CREATE TABLE usage_days (
    entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    day      TEXT NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (entry_id, day)
);
