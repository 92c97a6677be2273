-- Keyward catalog, schema 2: vault-wide settings the user changes at run time (auto-lock).
-- Values are plain text and never secret.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- A key's history (its detail view) reads the audit rows about it.
CREATE INDEX audit_by_target ON audit (target, seq);
