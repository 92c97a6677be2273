-- Keyward catalog, schema 1. Secrets never live here in plaintext: `file_secrets` holds only age
-- ciphertext (explicit file keystore), the vault header holds only wrapped key material.

CREATE TABLE vault (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    vault_id  TEXT NOT NULL,
    keystore  TEXT NOT NULL CHECK (keystore IN ('keychain', 'file')),
    header    TEXT NOT NULL,
    created   TEXT NOT NULL
);

CREATE TABLE entries (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,
    kind                   TEXT NOT NULL,
    -- Write order between keychain and catalog: pending -> (keychain written) -> active;
    -- deleting -> (keychain item removed) -> row removed. Startup reconciles the in-between.
    state                  TEXT NOT NULL CHECK (state IN ('pending', 'active', 'deleting')),
    owner                  TEXT,
    purpose                TEXT,
    tags                   TEXT NOT NULL DEFAULT '[]',
    created                TEXT NOT NULL,
    rotated                TEXT,
    rotation_interval_days INTEGER,
    expires                TEXT,
    last_used              TEXT,
    use_count              INTEGER NOT NULL DEFAULT 0,
    config                 TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE unlock_throttle (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    failures        INTEGER NOT NULL,
    next_allowed_at INTEGER NOT NULL
);
INSERT INTO unlock_throttle (id, failures, next_allowed_at) VALUES (1, 0, 0);

-- Last accepted RFC 6238 time step per TOTP factor, so a code is never accepted twice.
CREATE TABLE totp_steps (
    slot_id   TEXT PRIMARY KEY,
    last_step INTEGER NOT NULL
);

CREATE TABLE file_secrets (
    item  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    ts        TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT,
    outcome   TEXT NOT NULL,
    actor     TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
