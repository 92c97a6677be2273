-- Keyward catalog, schema 3: what is needed to authenticate the catalog and to finish an
-- interrupted rotation. Nothing here is secret.

-- HMAC of the header (recipient, KDF parameters, slots) under a key derived from the vault's
-- identity; NULL only for a vault created before schema 3, until its next unlock.
ALTER TABLE vault ADD COLUMN header_mac TEXT;

-- A rotation in flight: written before the new ciphertext goes to the keystore, removed once
-- the entry's row names the new key. At start-up, a row left here is finished (the keystore
-- holds the ciphertext whose SHA-256 is recorded) or dropped (it still holds the old one).
CREATE TABLE pending_rotations (
    entry_id          TEXT PRIMARY KEY,
    ciphertext_sha256 TEXT NOT NULL,
    config            TEXT NOT NULL,
    rotated           TEXT NOT NULL
);
