-- Keyward catalog, schema 8: the programs named in audit records' process chains (each
-- executable and script), and which records name each, so `keyward audit list --client` finds
-- them without reading every record of a long trail. Derived from the audit rows (rebuilt from
-- them here) and not part of the chain: an edit here changes what a filtered listing shows,
-- never what `audit verify` checks or an unfiltered export holds.
CREATE TABLE audit_programs (
    id   INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE
);
CREATE TABLE audit_program_rows (
    program INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (program, seq)
) WITHOUT ROWID;
INSERT OR IGNORE INTO audit_programs (path)
    SELECT p FROM (
        SELECT json_extract(c.value, '$.exe') AS p
            FROM audit, json_each(audit.actor, '$.chain') AS c
        UNION
        SELECT json_extract(c.value, '$.script')
            FROM audit, json_each(audit.actor, '$.chain') AS c
    )
    WHERE p IS NOT NULL
    ORDER BY p;
INSERT OR IGNORE INTO audit_program_rows (program, seq)
    SELECT pr.id, audit.seq
        FROM audit, json_each(audit.actor, '$.chain') AS c
        JOIN audit_programs AS pr
            ON pr.path = json_extract(c.value, '$.exe')
            OR pr.path = json_extract(c.value, '$.script');
