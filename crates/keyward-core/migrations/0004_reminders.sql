-- Keyward catalog, schema 4: the last reminder shown for each key (its state then and when), so
-- a restart of the agent does not remind again. Not secret, and not a control: editing a row only
-- changes when its user is reminded.
CREATE TABLE reminders (
    entry_id TEXT PRIMARY KEY REFERENCES entries (id) ON DELETE CASCADE,
    state    TEXT NOT NULL,
    at       TEXT NOT NULL
);
