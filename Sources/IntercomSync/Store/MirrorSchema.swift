import GRDB

/// The mirror's schema, as a sequence of migrations. Never edit a shipped migration: add one.
enum MirrorSchema {
    /// `PRAGMA application_id` of every mirror ("ICSY"), so a foreign SQLite file is recognised.
    static let applicationID: Int32 = 0x4943_5359

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: contacts, fts, outbox, sync_state") { db in
            try db.execute(sql: "PRAGMA application_id = \(applicationID)")
            // row_id is an INTEGER PRIMARY KEY so that VACUUM keeps it stable: the FTS index
            // refers to contacts by it.
            try db.execute(
                sql: """
                    CREATE TABLE contacts (
                        row_id INTEGER PRIMARY KEY,
                        id TEXT NOT NULL UNIQUE,
                        external_id TEXT,
                        role TEXT NOT NULL CHECK (role IN ('user', 'lead')),
                        email TEXT,
                        phone TEXT,
                        name TEXT,
                        avatar TEXT,
                        owner_id TEXT,
                        custom_attributes TEXT NOT NULL DEFAULT '{}',
                        created_at INTEGER NOT NULL CHECK (typeof(created_at) = 'integer'),
                        updated_at INTEGER NOT NULL CHECK (typeof(updated_at) = 'integer'),
                        body TEXT NOT NULL,
                        etag TEXT,
                        fetched_at INTEGER,
                        validated_at INTEGER,
                        state TEXT NOT NULL DEFAULT 'synced' CHECK (state IN ('synced', 'pending', 'tombstoned')),
                        seen_generation INTEGER NOT NULL DEFAULT 0
                    );
                    CREATE INDEX contacts_by_email ON contacts(ifnull(email, '') COLLATE NOCASE);
                    CREATE INDEX contacts_by_external_id ON contacts(external_id);
                    CREATE INDEX contacts_by_updated_at ON contacts(updated_at);
                    CREATE INDEX contacts_by_name ON contacts(ifnull(name, '') COLLATE NOCASE);
                    CREATE INDEX contacts_by_state ON contacts(state);

                    CREATE VIRTUAL TABLE contacts_fts USING fts5(
                        name, email, phone,
                        content = 'contacts', content_rowid = 'row_id',
                        tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
                    );
                    CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
                        INSERT INTO contacts_fts(rowid, name, email, phone)
                        VALUES (new.row_id, new.name, new.email, new.phone);
                    END;
                    CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
                        INSERT INTO contacts_fts(contacts_fts, rowid, name, email, phone)
                        VALUES ('delete', old.row_id, old.name, old.email, old.phone);
                    END;
                    CREATE TRIGGER contacts_fts_update AFTER UPDATE OF name, email, phone ON contacts
                    WHEN old.name IS NOT new.name OR old.email IS NOT new.email OR old.phone IS NOT new.phone
                    BEGIN
                        INSERT INTO contacts_fts(contacts_fts, rowid, name, email, phone)
                        VALUES ('delete', old.row_id, old.name, old.email, old.phone);
                        INSERT INTO contacts_fts(rowid, name, email, phone)
                        VALUES (new.row_id, new.name, new.email, new.phone);
                    END;

                    CREATE TABLE outbox (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        kind TEXT NOT NULL CHECK (kind IN ('create_contact', 'send_message')),
                        contact_id TEXT,
                        depends_on INTEGER REFERENCES outbox(seq),
                        payload TEXT NOT NULL,
                        state TEXT NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'in_flight', 'sent', 'failed', 'unknown')),
                        attempts INTEGER NOT NULL DEFAULT 0,
                        next_attempt_at INTEGER,
                        last_error_status INTEGER,
                        last_error_code TEXT,
                        last_error_message TEXT,
                        last_error_request_id TEXT,
                        remote_id TEXT,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL
                    );
                    CREATE INDEX outbox_by_state ON outbox(state, seq);

                    CREATE TABLE sync_state (
                        key TEXT PRIMARY KEY,
                        value TEXT NOT NULL
                    ) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v2: batch FTS indexing") { db in
            // Bulk upserts index a batch's new rows in one statement and set `fts.batch` for
            // the length of a savepoint so the per-row trigger stands aside. A larger FTS5
            // hash (16 MB) lets a batch's terms reach disk as one segment.
            try db.execute(
                sql: """
                    DROP TRIGGER contacts_fts_insert;
                    CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts
                    WHEN NOT EXISTS (SELECT 1 FROM sync_state WHERE key = 'fts.batch')
                    BEGIN
                        INSERT INTO contacts_fts(rowid, name, email, phone)
                        VALUES (new.row_id, new.name, new.email, new.phone);
                    END;
                    INSERT INTO contacts_fts(contacts_fts, rank) VALUES ('hashsize', 16777216);
                    """)
        }
        migrator.registerMigration("v3: full-pull seen set") { db in
            // Ids a full pull has seen so far, committed with each page: a resumed pull keeps
            // them, and the complete pull tombstones the contacts not among them. A narrow table
            // spares rewriting every unchanged contact row to mark it seen.
            try db.execute(sql: "CREATE TABLE full_pull_seen (id TEXT PRIMARY KEY) WITHOUT ROWID")
        }
        migrator.registerMigration("v4: local id aliases") { db in
            // A created contact's local id keeps resolving after its push: `alias` is the
            // `local_…` id, `id` the Intercom id it became.
            try db.execute(
                sql: """
                    CREATE TABLE contact_aliases (alias TEXT PRIMARY KEY, id TEXT NOT NULL) WITHOUT ROWID;
                    CREATE INDEX outbox_by_contact ON outbox(contact_id);
                    CREATE INDEX outbox_by_dependency ON outbox(depends_on);
                    """)
        }
        migrator.registerMigration("v5: deferred indexing") { db in
            // A bulk load defers indexing: `fts.deferred` holds the highest row_id the FTS index
            // had when it began, and the triggers stand aside for rows above it (a reused lower
            // row_id is still indexed at once). Committed with the load's batches, it survives a
            // crash, and the next open finishes the indexing (`finishDeferredIndexing`).
            // `fts.batch`, the one-transaction flag it replaces, never outlived its transaction.
            try db.execute(
                sql: """
                    DROP TRIGGER contacts_fts_insert;
                    DROP TRIGGER contacts_fts_delete;
                    DROP TRIGGER contacts_fts_update;
                    DELETE FROM sync_state WHERE key = 'fts.batch';
                    CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts
                    WHEN NOT EXISTS (
                        SELECT 1 FROM sync_state WHERE key = 'fts.deferred' AND new.row_id > CAST(value AS INTEGER))
                    BEGIN
                        INSERT INTO contacts_fts(rowid, name, email, phone)
                        VALUES (new.row_id, new.name, new.email, new.phone);
                    END;
                    CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts
                    WHEN NOT EXISTS (
                        SELECT 1 FROM sync_state WHERE key = 'fts.deferred' AND old.row_id > CAST(value AS INTEGER))
                    BEGIN
                        INSERT INTO contacts_fts(contacts_fts, rowid, name, email, phone)
                        VALUES ('delete', old.row_id, old.name, old.email, old.phone);
                    END;
                    CREATE TRIGGER contacts_fts_update AFTER UPDATE OF name, email, phone ON contacts
                    WHEN (old.name IS NOT new.name OR old.email IS NOT new.email OR old.phone IS NOT new.phone)
                        AND NOT EXISTS (
                            SELECT 1 FROM sync_state
                            WHERE key = 'fts.deferred' AND old.row_id > CAST(value AS INTEGER))
                    BEGIN
                        INSERT INTO contacts_fts(contacts_fts, rowid, name, email, phone)
                        VALUES ('delete', old.row_id, old.name, old.email, old.phone);
                        INSERT INTO contacts_fts(rowid, name, email, phone)
                        VALUES (new.row_id, new.name, new.email, new.phone);
                    END;
                    """)
        }
        migrator.registerMigration("v6: imported creates") { db in
            // An import writes its contacts without an outbox entry each: their row_id ranges
            // wait here, with how many of their contacts still have no create entry, and a flush
            // (or a message to one of them) writes the entries. The entries and their indexes
            // were a third of an import's bytes, written while the file was read.
            try db.execute(
                sql: """
                    CREATE TABLE imported_creates (
                        first_row_id INTEGER PRIMARY KEY,
                        last_row_id INTEGER NOT NULL,
                        waiting INTEGER NOT NULL,
                        created_at INTEGER NOT NULL
                    )
                    """)
        }
        migrator.registerMigration("v7: partitioned full pull") { db in
            // The ranges of `created_at` a partitioned full pull walks, each with the cursor
            // after its last committed page: a killed pull resumes every range where it stopped.
            // Bounds are seconds (days' starts in the workspace's timezone); NULL is unbounded.
            try db.execute(
                sql: """
                    CREATE TABLE pull_ranges (
                        seq INTEGER PRIMARY KEY,
                        lower INTEGER,
                        upper INTEGER,
                        expected INTEGER NOT NULL,
                        cursor TEXT,
                        fetched INTEGER NOT NULL DEFAULT 0,
                        done INTEGER NOT NULL DEFAULT 0
                    )
                    """)
        }
        migrator.registerMigration("v8: range totals") { db in
            // Search pages by position: a contact removed behind a range's cursor shifts the
            // rest back, and the next page would skip one. The total search reported with the
            // range's last committed page tells a later page (or a resumed walk) that it shrank.
            try db.execute(sql: "ALTER TABLE pull_ranges ADD COLUMN last_total INTEGER")
        }
        migrator.registerMigration("v9: partitioned incremental pull") { db in
            // An incremental pass split into ranges of `created_at`, like a full pull's.
            try db.execute(
                sql: """
                    CREATE TABLE incremental_ranges (
                        seq INTEGER PRIMARY KEY,
                        lower INTEGER,
                        upper INTEGER,
                        expected INTEGER NOT NULL,
                        cursor TEXT,
                        fetched INTEGER NOT NULL DEFAULT 0,
                        done INTEGER NOT NULL DEFAULT 0,
                        last_total INTEGER
                    )
                    """)
        }
        migrator.registerMigration("v10: compressed bodies") { db in
            // Bodies are stored compressed (`BodyCompression`), with dictionaries kept here.
            // `token` is a random number drawn at training, which names the dictionary in the
            // process's caches. A mirror with text bodies compresses them after this migration,
            // in batches that resume where a killed upgrade stopped (`bodies.upgrade`).
            try db.execute(
                sql: """
                    CREATE TABLE body_dictionaries (
                        id INTEGER PRIMARY KEY,
                        token INTEGER NOT NULL UNIQUE,
                        dictionary BLOB NOT NULL,
                        samples INTEGER NOT NULL,
                        ratio REAL NOT NULL,
                        trained_at INTEGER NOT NULL
                    );
                    INSERT INTO sync_state (key, value)
                    SELECT 'bodies.upgrade', '0' WHERE EXISTS (SELECT 1 FROM contacts WHERE body != '');
                    """)
        }
        migrator.registerMigration("v11: partial state index") { db in
            // Almost every contact is synced: an index of the others (pending, tombstoned)
            // answers what the state index was for, at a fortieth of its size.
            try db.execute(
                sql: """
                    DROP INDEX IF EXISTS contacts_by_state;
                    CREATE INDEX contacts_by_state ON contacts(state) WHERE state != 'synced';
                    """)
        }
        migrator.registerMigration("v12: rewrites under deferred indexing") { db in
            // While a load defers full-text indexing, the rows above `fts.deferred` change their
            // indexed text or go without the index hearing of it. A full-text index built beside
            // the load, as it commits (`FTSBuildBeside`), would keep what it read of them: these
            // count such changes, from any connection, so that the build starts again when the
            // count moves. The count goes with the flag.
            try db.execute(
                sql: """
                    CREATE TRIGGER contacts_fts_deferred_update AFTER UPDATE OF name, email, phone ON contacts
                    WHEN (old.name IS NOT new.name OR old.email IS NOT new.email OR old.phone IS NOT new.phone)
                        AND EXISTS (
                            SELECT 1 FROM sync_state
                            WHERE key = 'fts.deferred' AND old.row_id > CAST(value AS INTEGER))
                    BEGIN
                        INSERT INTO sync_state (key, value) VALUES ('fts.rewrites', 1)
                        ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1;
                    END;
                    CREATE TRIGGER contacts_fts_deferred_delete AFTER DELETE ON contacts
                    WHEN EXISTS (
                        SELECT 1 FROM sync_state WHERE key = 'fts.deferred' AND old.row_id > CAST(value AS INTEGER))
                    BEGIN
                        INSERT INTO sync_state (key, value) VALUES ('fts.rewrites', 1)
                        ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1;
                    END;
                    """)
        }
        migrator.registerMigration("v13: tags, companies, segments") { db in
            // The workspace's tags, segments and companies, and each contact's links to them.
            // A link carries its contact's `updated_at` (a trigger keeps it so), so that the
            // contacts of one tag come from its links in `updated_at` order, a page at a time,
            // without reading every contact of the tag. `kind`: 0 tag, 1 company, 2 segment
            // (`LinkKind`). A contact whose body lists only some of its tags or companies waits
            // in `link_followups` until a sync reads the rest. `name_key` is the name with its case
            // folded (`LinkName.key`), which queries compare: SQLite's NOCASE folds ASCII alone.
            // `companies_fts` indexes the companies' names for `--search` (written anew whenever
            // companies are stored: there are thousands, not millions).
            // While a bulk load defers its indexes, links go to `contact_links_loading`, in the
            // order of their contacts' row_ids, and reach `contact_links` sorted at its end: a
            // million links inserted at their places in the tags' ranges cost a first pull a
            // third more. A tombstoned contact keeps no links:
            // the body that revives it brings them back.
            try db.execute(
                sql: """
                    CREATE TABLE tags (
                        id TEXT PRIMARY KEY,
                        name TEXT NOT NULL,
                        name_key TEXT NOT NULL
                    ) WITHOUT ROWID;
                    CREATE INDEX tags_by_name ON tags(name_key);
                    CREATE TABLE segments (
                        id TEXT PRIMARY KEY,
                        name TEXT NOT NULL,
                        name_key TEXT NOT NULL,
                        person_type TEXT,
                        created_at INTEGER,
                        updated_at INTEGER
                    ) WITHOUT ROWID;
                    CREATE INDEX segments_by_name ON segments(name_key);
                    CREATE TABLE companies (
                        id TEXT PRIMARY KEY,
                        company_id TEXT,
                        name TEXT,
                        name_key TEXT,
                        plan TEXT,
                        size INTEGER,
                        industry TEXT,
                        website TEXT,
                        monthly_spend REAL,
                        user_count INTEGER,
                        created_at INTEGER,
                        updated_at INTEGER,
                        body TEXT NOT NULL
                    ) WITHOUT ROWID;
                    CREATE INDEX companies_by_name ON companies(name_key);
                    CREATE INDEX companies_by_company_id ON companies(company_id);
                    CREATE VIRTUAL TABLE companies_fts USING fts5(
                        id UNINDEXED, name, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
                    );
                    CREATE TABLE contact_links (
                        kind INTEGER NOT NULL,
                        target TEXT NOT NULL,
                        contact_updated_at INTEGER NOT NULL,
                        contact_row INTEGER NOT NULL,
                        PRIMARY KEY (kind, target, contact_updated_at, contact_row)
                    ) WITHOUT ROWID;
                    CREATE INDEX contact_links_by_contact ON contact_links(contact_row, kind);
                    CREATE TABLE contact_links_loading (
                        contact_row INTEGER NOT NULL,
                        kind INTEGER NOT NULL,
                        target TEXT NOT NULL,
                        PRIMARY KEY (contact_row, kind, target)
                    ) WITHOUT ROWID;
                    CREATE TABLE link_followups (
                        contact_row INTEGER NOT NULL,
                        kind INTEGER NOT NULL,
                        PRIMARY KEY (contact_row, kind)
                    ) WITHOUT ROWID;
                    CREATE TRIGGER contact_links_follow_updated_at AFTER UPDATE OF updated_at ON contacts
                    WHEN old.updated_at IS NOT new.updated_at
                    BEGIN
                        UPDATE contact_links SET contact_updated_at = new.updated_at WHERE contact_row = new.row_id;
                    END;
                    CREATE TRIGGER contact_links_tombstone AFTER UPDATE OF state ON contacts
                    WHEN new.state = 'tombstoned' AND old.state != 'tombstoned'
                    BEGIN
                        DELETE FROM contact_links WHERE contact_row = new.row_id;
                        DELETE FROM contact_links_loading WHERE contact_row = new.row_id;
                        DELETE FROM link_followups WHERE contact_row = new.row_id;
                    END;
                    CREATE TRIGGER contact_links_delete AFTER DELETE ON contacts
                    BEGIN
                        DELETE FROM contact_links WHERE contact_row = old.row_id;
                        DELETE FROM contact_links_loading WHERE contact_row = old.row_id;
                        DELETE FROM link_followups WHERE contact_row = old.row_id;
                    END;
                    """)
            // Contacts already mirrored list their tags and companies in their bodies: a sync
            // reads them (`ContactMirror.relinkStoredContacts`) the first time it runs.
            try db.execute(
                sql: """
                    INSERT INTO sync_state (key, value)
                    SELECT 'links.upgrade', '0' WHERE EXISTS (SELECT 1 FROM contacts)
                    """)
        }
        migrator.registerMigration("v14: tagging in the outbox") { db in
            // Tagging and untagging a contact are queued like creates and messages.
            try db.execute(
                sql: widenedOutbox(
                    kinds: ["create_contact", "send_message", "tag_contact", "untag_contact"],
                    states: ["pending", "in_flight", "sent", "failed", "unknown"]))
        }
        migrator.registerMigration("v15: offline edits") { db in
            // Edits of a contact's fields wait in `contact_edits`, one row a field: the value it
            // had when first edited (`base`), the edit (`mine`) and the newest value Intercom
            // sent (`server`), each as JSON text (NULL in `base` or `server`: the field was
            // absent). One `update_contact` entry of the outbox stands for a contact's edits.
            // The outbox also takes archives, deletes and notes, and a `conflict` state for an
            // edit that met a change of the same field on Intercom.
            try db.execute(
                sql: """
                    CREATE TABLE contact_edits (
                        contact_id TEXT NOT NULL,
                        field TEXT NOT NULL,
                        base TEXT,
                        mine TEXT NOT NULL,
                        server TEXT,
                        edited_at INTEGER NOT NULL,
                        PRIMARY KEY (contact_id, field)
                    ) WITHOUT ROWID;
                    """)
            try db.execute(
                sql: widenedOutbox(
                    kinds: [
                        "create_contact", "send_message", "tag_contact", "untag_contact", "update_contact",
                        "archive_contact", "unarchive_contact", "delete_contact", "add_note",
                    ],
                    states: ["pending", "in_flight", "sent", "failed", "unknown", "conflict"]))
        }
        migrator.registerMigration("v16: contact notes, superseded entries") { db in
            // The notes the mirror has read from Intercom (`GET /contacts/{id}/notes`, or the
            // answer to a note it sent), by contact. A contact's body only lists their ids.
            try db.execute(
                sql: """
                    CREATE TABLE contact_notes (
                        id TEXT PRIMARY KEY,
                        contact_id TEXT NOT NULL,
                        body TEXT NOT NULL,
                        author_id TEXT,
                        author_name TEXT,
                        created_at INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    CREATE INDEX contact_notes_by_contact ON contact_notes (contact_id, created_at);
                    """)
            // An entry that ended without being sent, and needs no one (`superseded`), is told
            // apart from a sent one and from a failed one.
            try db.execute(
                sql: widenedOutbox(
                    kinds: [
                        "create_contact", "send_message", "tag_contact", "untag_contact", "update_contact",
                        "archive_contact", "unarchive_contact", "delete_contact", "add_note",
                    ],
                    states: ["pending", "in_flight", "sent", "failed", "unknown", "conflict", "superseded"]))
            try db.execute(
                sql: """
                    UPDATE outbox SET state = 'superseded'
                    WHERE state = 'failed' AND last_error_code = 'superseded_by_delete'
                    """)
        }
        migrator.registerMigration("v17: entries pushed to a team's outbox") { db in
            // A mirror that follows a team's store hands its entries to the team's outbox
            // (`pushed`) and learns their outcome from the store.
            try db.execute(
                sql: widenedOutbox(
                    kinds: [
                        "create_contact", "send_message", "tag_contact", "untag_contact", "update_contact",
                        "archive_contact", "unarchive_contact", "delete_contact", "add_note",
                    ],
                    states: ["pending", "in_flight", "sent", "failed", "unknown", "conflict", "superseded", "pushed"]))
        }
        return migrator
    }

    /// The outbox copied to a table whose checks allow `kinds` and `states`, keeping every entry
    /// and its sequence, so that no number is ever given twice: SQLite cannot widen a CHECK in
    /// place.
    private static func widenedOutbox(kinds: [String], states: [String]) -> String {
        func list(_ values: [String]) -> String { values.map { "'\($0)'" }.joined(separator: ", ") }
        return """
            CREATE TABLE outbox_widened (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL CHECK (kind IN (\(list(kinds)))),
                contact_id TEXT,
                depends_on INTEGER REFERENCES outbox(seq),
                payload TEXT NOT NULL,
                state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN (\(list(states)))),
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_at INTEGER,
                last_error_status INTEGER,
                last_error_code TEXT,
                last_error_message TEXT,
                last_error_request_id TEXT,
                remote_id TEXT,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            );
            INSERT INTO outbox_widened SELECT * FROM outbox;
            CREATE TEMP TABLE outbox_sequence AS SELECT seq FROM sqlite_sequence WHERE name = 'outbox';
            DROP TABLE outbox;
            ALTER TABLE outbox_widened RENAME TO outbox;
            DELETE FROM sqlite_sequence WHERE name = 'outbox';
            INSERT INTO sqlite_sequence (name, seq)
            SELECT 'outbox', max(ifnull((SELECT seq FROM temp.outbox_sequence), 0), ifnull(max(seq), 0))
            FROM outbox;
            DROP TABLE temp.outbox_sequence;
            CREATE INDEX outbox_by_state ON outbox(state, seq);
            CREATE INDEX outbox_by_contact ON outbox(contact_id);
            CREATE INDEX outbox_by_dependency ON outbox(depends_on);
            """
    }

    /// The FTS insert trigger as migration v5 created it, for `schema` ("" or "name."). A bulk
    /// load drops it and creates it again at its end (`ContactMirror.beginBulkLoad(in:)`).
    static func ftsInsertTrigger(schema: String = "") -> String {
        """
        CREATE TRIGGER IF NOT EXISTS \(schema)contacts_fts_insert AFTER INSERT ON contacts
        WHEN NOT EXISTS (
            SELECT 1 FROM sync_state WHERE key = 'fts.deferred' AND new.row_id > CAST(value AS INTEGER))
        BEGIN
            INSERT INTO contacts_fts(rowid, name, email, phone)
            VALUES (new.row_id, new.name, new.email, new.phone);
        END
        """
    }

    /// The contact indexes a bulk load drops and builds again at its end: a `CREATE INDEX`
    /// sorts once, where a million inserts each walk every index (the email index, fed emails
    /// in no order, cost three times the rest of a row). The id index stays: upserts look
    /// contacts up by it. A bulk import finds duplicates through `EmailRows` meanwhile.
    static let deferrableIndexes: [(name: String, sql: String)] = [
        (
            "contacts_by_email",
            "CREATE INDEX IF NOT EXISTS contacts_by_email ON contacts(ifnull(email, '') COLLATE NOCASE)"
        ),
        ("contacts_by_external_id", "CREATE INDEX IF NOT EXISTS contacts_by_external_id ON contacts(external_id)"),
        ("contacts_by_updated_at", "CREATE INDEX IF NOT EXISTS contacts_by_updated_at ON contacts(updated_at)"),
        ("contacts_by_name", "CREATE INDEX IF NOT EXISTS contacts_by_name ON contacts(ifnull(name, '') COLLATE NOCASE)"),
        (
            "contacts_by_state",
            "CREATE INDEX IF NOT EXISTS contacts_by_state ON contacts(state) WHERE state != 'synced'"
        ),
    ]

    /// The ones a pull's load drops. The state index stays: it holds only the contacts not
    /// synced, which a pull's rows are not, where building it again would read every row. (An
    /// import's rows are pending: those it sorts faster at the end. The end of any load builds
    /// every deferrable index that is missing.)
    static let droppedByPulls = deferrableIndexes.filter { $0.name != "contacts_by_state" }
}
