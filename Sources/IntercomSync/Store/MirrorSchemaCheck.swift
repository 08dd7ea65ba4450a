import GRDB

/// What a mirror's schema should hold, what it holds instead, and the repair of what can be
/// derived: the indexes, the triggers and the full-text index, all rebuilt from the contacts.
///
/// The expected schema is the one the migrations build, read from a fresh in-memory mirror, so
/// it never drifts from them. SQLite stores each object's `CREATE` statement normalized (no
/// `IF NOT EXISTS`); whitespace is collapsed before comparing.
package struct SchemaDamage: Sendable, Equatable, CustomStringConvertible {
    /// `index contacts_by_email`, `table contacts_fts`…
    package var missing: [String]
    package var altered: [String]
    /// Objects whose loss is loss of data (the contacts, the outbox): no repair brings them back.
    package var underivable: [String]

    package var isRepairable: Bool { underivable.isEmpty }

    package var description: String {
        var parts: [String] = []
        if !missing.isEmpty { parts.append("missing " + missing.joined(separator: ", ")) }
        if !altered.isEmpty { parts.append("altered " + altered.joined(separator: ", ")) }
        return parts.joined(separator: "; ")
    }
}

extension ContactMirror {
    /// The objects the migrations create: "type name" → normalized SQL.
    static let expectedSchema: [String: String] = {
        // The migrations are this program's own and run on an empty in-memory database: they
        // cannot fail short of a broken build.
        let queue = try! DatabaseQueue()
        try! MirrorSchema.migrator.migrate(queue)
        return try! queue.read { db in try schemaObjects(db) }
    }()

    /// Objects a repair may rebuild: derived from the contacts, or bookkeeping a pull restarts.
    static func isDerivable(_ object: String) -> Bool {
        object.hasPrefix("index ") || object.hasPrefix("trigger ") || object.hasPrefix("table contacts_fts")
    }

    /// The SHA-256 of `expectedSchema` (`schemaDigest`). A first open of a process compares
    /// the mirror's schema against it and builds `expectedSchema`, which runs every migration on
    /// an empty database, only when they differ. A test checks it against the migrations: a
    /// migration that changes the schema changes this value with it.
    static let expectedSchemaDigest = "dee73062ca4cc1fdcab0ec1bb7db0ea3acc22425c23493a9b8c3f4aa98630d47"

    /// A digest of schema objects: each "type name" and its SQL, in order of their names.
    static func schemaDigest(_ objects: [String: String]) -> String {
        SHA256.hex(objects.sorted { $0.key < $1.key }.map { "\($0.key)\n\($0.value)\n" }.joined())
    }

    /// Each schema object's "type name" and SQL.
    static let schemaObjectsSQL = """
        SELECT type || ' ' || name, sql FROM sqlite_master
        WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND type IN ('table', 'index', 'trigger')
        """

    static func schemaObjects(_ db: Database) throws -> [String: String] {
        var objects: [String: String] = [:]
        let rows = try Row.fetchCursor(db, sql: schemaObjectsSQL)
        while let row = try rows.next() {
            objects[row[0] as String] = normalizedSQL(row[1] as String)
        }
        return objects
    }

    /// SQL with each run of whitespace made one space, and none at either end.
    static func normalizedSQL(_ sql: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(sql.utf8.count)
        var pendingSpace = false
        for byte in sql.utf8 {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), 0x0B, 0x0C:
                pendingSpace = !bytes.isEmpty
            default:
                if pendingSpace { bytes.append(UInt8(ascii: " ")) }
                pendingSpace = false
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// What differs from the schema the migrations build, or nil when nothing does. The indexes
    /// and trigger a bulk load drops for its length are not counted missing while its flags say
    /// it is under way.
    package func schemaDamage() throws -> SchemaDamage? {
        try writer.read { db in try Self.schemaDamage(db) }
    }

    static func schemaDamage(_ db: Database) throws -> SchemaDamage? {
        let actual = try schemaObjects(db)
        if schemaDigest(actual) == expectedSchemaDigest { return nil }
        var excused: Set<String> = []
        if try syncState(.indexesDeferred, in: db) != nil {
            excused.formUnion(MirrorSchema.deferrableIndexes.map { "index \($0.name)" })
        }
        if try syncState(.ftsDeferred, in: db) != nil { excused.insert("trigger contacts_fts_insert") }
        let missing = expectedSchema.keys.filter { actual[$0] == nil && !excused.contains($0) }.sorted()
        let altered = expectedSchema.keys.filter { key in actual[key].map { $0 != expectedSchema[key] } ?? false }.sorted()
        guard !missing.isEmpty || !altered.isEmpty else { return nil }
        return SchemaDamage(
            missing: missing, altered: altered, underivable: (missing + altered).filter { !isDerivable($0) })
    }

    /// Rebuilds what `schemaDamage` found and can be derived: indexes and triggers from their
    /// definitions, the full-text index from the contacts. Contacts and the outbox are not
    /// touched. Returns what was rebuilt; throws when something underivable is gone.
    package func repairSchema() throws -> [String] {
        try writer.write { db in
            guard let damage = try Self.schemaDamage(db) else { return [] }
            guard damage.isRepairable else {
                throw MirrorError(
                    .corrupt, path: path,
                    detail: "the mirror has lost \(damage.underivable.joined(separator: ", ")), which cannot be rebuilt",
                    remedy: .newMirror)
            }
            let broken = damage.missing + damage.altered
            var rebuilt: [String] = []
            if broken.contains(where: { $0.hasPrefix("table contacts_fts") }) {
                // Drop what is left of the index (the virtual table takes its shadow tables with
                // it; without it, they go one by one), then make it anew from the contacts.
                try db.execute(sql: "DROP TABLE IF EXISTS contacts_fts")
                for shadow in ["data", "idx", "docsize", "config", "content"] {
                    try db.execute(sql: "DROP TABLE IF EXISTS contacts_fts_\(shadow)")
                }
                try db.execute(sql: Self.expectedSchema["table contacts_fts"]!)
                try db.execute(sql: "INSERT INTO contacts_fts(contacts_fts, rank) VALUES ('hashsize', 16777216)")
                try db.execute(sql: "INSERT INTO contacts_fts(contacts_fts) VALUES ('rebuild')")
                rebuilt.append("the full-text index (table contacts_fts)")
            }
            for object in broken where object.hasPrefix("index ") || object.hasPrefix("trigger ") {
                let parts = object.split(separator: " ")
                try db.execute(sql: "DROP \(parts[0].uppercased()) IF EXISTS \(parts[1])")
                try db.execute(sql: Self.expectedSchema[object]!)
                rebuilt.append(object)
            }
            return rebuilt
        }
    }

    /// A contact whose stored data cannot be read: a column that is not what the mirror writes
    /// (custom attributes that are not a JSON object, an unknown role or state), or a body
    /// that does not decode. A flipped byte on the disk, a write by another tool.
    package struct DamagedContact: Sendable, Equatable {
        package var rowID: Int64
        package var id: String
        package var state: String
        package var what: String
    }

    /// Every damaged contact (`DamagedContact`): the columns by SQL, the bodies one by one.
    package func damagedContacts() throws -> [DamagedContact] {
        try writer.read { db in
            var found: [Int64: DamagedContact] = [:]
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT row_id, id, state, json_valid(custom_attributes) AS attributes_valid,
                        ifnull(CASE WHEN json_valid(custom_attributes) THEN json_type(custom_attributes) END = 'object', 0)
                            AS attributes_object, role IN ('user', 'lead') AS role_valid,
                        state IN ('synced', 'pending', 'tombstoned') AS state_valid
                    FROM contacts
                    WHERE NOT ifnull(CASE WHEN json_valid(custom_attributes) THEN json_type(custom_attributes) END = 'object', 0)
                        OR role NOT IN ('user', 'lead') OR state NOT IN ('synced', 'pending', 'tombstoned')
                    """)
            {
                let what: String
                if !(row["attributes_valid"] as Bool? ?? false) || !(row["attributes_object"] as Bool? ?? false) {
                    what = "its custom attributes are not a JSON object"
                } else if !(row["role_valid"] as Bool? ?? false) {
                    what = "its role is neither user nor lead"
                } else {
                    what = "its state is unknown"
                }
                let rowID: Int64 = row["row_id"]
                found[rowID] = DamagedContact(rowID: rowID, id: row["id"] ?? "?", state: row["state"] ?? "?", what: what)
            }
            let decode = try db.cachedStatement(sql: "SELECT contact_body(body) FROM contacts WHERE row_id = ?")
            let rows = try Row.fetchCursor(db, sql: "SELECT row_id, id, state FROM contacts WHERE body != ''")
            while let row = try rows.next() {
                let rowID: Int64 = row[0]
                do {
                    guard let text = try String.fetchOne(decode, arguments: [rowID]),
                        text.utf8.first(where: { $0 != 0x20 && $0 != 0x0A }) == UInt8(ascii: "{")
                    else { throw MirrorError(.corrupt, detail: "not a JSON object") }
                    try JSONValue.validate(text)
                } catch {
                    if found[rowID] == nil {
                        found[rowID] = DamagedContact(
                            rowID: rowID, id: row[1] ?? "?", state: row[2] ?? "?", what: "its stored body cannot be read")
                    }
                }
            }
            return found.values.sorted { $0.rowID < $1.rowID }
        }
    }

    /// Makes the damaged contacts readable again and has Intercom's copy replace them: a synced
    /// or tombstoned contact's unreadable columns are reset (no attributes, role user), its body
    /// emptied and its `updated_at` set to 0, so the next full pull writes Intercom's version
    /// over it (and tombstones it if Intercom has none). A pending contact is only reported:
    /// its create in the outbox holds its fields. Returns the contacts marked.
    package func markDamagedForRefetch(_ damaged: [DamagedContact]) throws -> [DamagedContact] {
        let marked = damaged.filter { $0.state != ContactState.pending.rawValue }
        try writer.write { db in
            for contact in marked {
                try db.execute(
                    sql: """
                        UPDATE contacts SET
                            custom_attributes = CASE WHEN ifnull(CASE WHEN json_valid(custom_attributes)
                                THEN json_type(custom_attributes) END = 'object', 0) THEN custom_attributes ELSE '{}' END,
                            role = CASE WHEN role IN ('user', 'lead') THEN role ELSE 'user' END,
                            state = CASE WHEN state IN ('synced', 'tombstoned') THEN state ELSE 'synced' END,
                            body = '', etag = NULL, updated_at = 0
                        WHERE row_id = ?
                        """, arguments: [contact.rowID])
            }
        }
        return marked
    }

    /// What SQLite's own checks find wrong with the file and the full-text index; empty when
    /// nothing.
    ///
    /// On a mirror opened read-only the full-text index is not compared (`isReadOnly`): FTS5's
    /// check is a write, in SQLite's eyes.
    package func integrityProblems() throws -> [String] {
        if isReadOnly {
            return try writer.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").filter { $0 != "ok" } }
        }
        return try writer.write { db in
            var problems = try String.fetchAll(db, sql: "PRAGMA integrity_check").filter { $0 != "ok" }
            do {
                try db.execute(sql: "INSERT INTO contacts_fts(contacts_fts, rank) VALUES ('integrity-check', 1)")
            } catch let error as DatabaseError {
                problems.append("the full-text index does not match the contacts (\(error.message ?? "corrupt"))")
            }
            return problems
        }
    }
}
