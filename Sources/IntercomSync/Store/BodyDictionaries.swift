import Foundation
import GRDB
import GRDBSQLite

/// The dictionaries a mirror's bodies are compressed with (`BodyCompression`), in the table
/// `body_dictionaries`. Dictionaries are only ever added: a body written under an older one
/// still reads after a retrain.
///
/// The first is trained once `BodyCompression.firstTrainingAfter` bodies were stored without
/// one (they are compressed again with it); a new one when the bodies compressed under the
/// newest take half again as many bytes as its held-out samples did.
enum BodyDictionaries {
    /// Bodies compressed under one dictionary, in this process, before it is judged.
    static let retrainAfter = 20_000
    /// How much worse than its training a dictionary may compress before a new one is trained.
    static let tolerance = 1.5

    /// The compressor new bodies are written with: the newest dictionary's, or the plain one
    /// before the first.
    static func current(in db: Database) throws -> BodyCompressor {
        let sql = "SELECT id, token, ratio FROM body_dictionaries ORDER BY id DESC LIMIT 1"
        guard let row = try Row.fetchOne(db.cachedStatement(sql: sql)) else { return .plain }
        let id: Int64 = row[0]
        let compressor = try BodyCodecs.shared.compressor(token: row[1]) {
            let bytes = try Data.fetchOne(db, sql: "SELECT dictionary FROM body_dictionaries WHERE id = ?", arguments: [id])
            return BodyCompressor(dictionaryID: id, bytes: [UInt8](bytes ?? Data()), trainedRatio: row[2])
        }
        guard let compressor else {
            throw MirrorError(.corrupt, detail: "the mirror's body dictionary \(id) is damaged")
        }
        return compressor
    }

    /// Whether a dictionary should be trained after a batch compressed with `compressor`, which
    /// compressed `plainBodies` of them without a dictionary.
    static func trainingIsDue(after compressor: BodyCompressor, plainBodies: Int, in db: Database) throws -> Bool {
        if compressor.dictionaryID == 0 {
            guard plainBodies > 0 else { return false }
            let waiting = try Int(ContactMirror.syncState(.plainBodies, in: db) ?? "") ?? 0
            try ContactMirror.setSyncState(.plainBodies, to: String(waiting + plainBodies), in: db)
            return waiting + plainBodies >= BodyCompression.firstTrainingAfter
        }
        return drifted(compressor.tally, trainedRatio: compressor.trainedRatio)
    }

    /// Whether bodies compressing to `tally.ratio` of their size have drifted from a dictionary
    /// whose samples compressed to `trainedRatio`.
    static func drifted(_ tally: (bodies: Int, ratio: Double), trainedRatio: Double) -> Bool {
        tally.bodies >= retrainAfter && tally.ratio > trainedRatio * tolerance
    }

    /// Trains a dictionary from the newest synced bodies and stores it; returns its compressor, or
    /// nil when zstd could not train one (too few bodies, or too alike). The first dictionary
    /// also compresses again the bodies stored without one.
    @discardableResult
    static func train(in db: Database, now: Int) throws -> BodyCompressor? {
        let samples = try String.fetchAll(
            db,
            sql: """
                SELECT contact_body(body) FROM contacts WHERE state = 'synced' AND body != ''
                ORDER BY row_id DESC LIMIT ?
                """, arguments: [BodyCompression.trainingSamples])
        // Trained on half the samples and judged on the other half: a dictionary compresses the
        // bodies it was trained from better than the ones it will meet.
        let training = samples.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        let held = samples.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        guard let bytes = BodyCompression.trainDictionary(from: training) else {
            // Not again at every batch: after as many bodies more.
            try ContactMirror.setSyncState(.plainBodies, to: nil, in: db)
            return nil
        }
        let id = (try Int64.fetchOne(db, sql: "SELECT max(id) FROM body_dictionaries") ?? 0) + 1
        guard let trial = BodyCompressor(dictionaryID: id, bytes: bytes, trainedRatio: 1) else { return nil }
        var raw = 0
        var packed = 0
        for sample in held {
            raw += sample.utf8.count
            packed += try trial.pack(sample) { $0.count }
        }
        let ratio = Double(packed) / Double(max(raw, 1))
        let token = Int64.random(in: 1...Int64.max)
        try db.execute(
            sql: """
                INSERT INTO body_dictionaries (id, token, dictionary, samples, ratio, trained_at)
                VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [id, token, Data(bytes), training.count, ratio, now])
        try ContactMirror.setSyncState(.plainBodies, to: nil, in: db)
        let compressor = try current(in: db)
        if id == 1 { try repack(where: "typeof(body) = 'blob' AND substr(body, 1, 1) = x'00'", with: compressor, in: db) }
        return compressor
    }

    /// Compresses again, with `compressor`, the bodies of the contacts that match `condition`,
    /// text bodies included (a contact created here has none: its empty text stays).
    static func repack(
        where condition: String, arguments: StatementArguments = [], with compressor: BodyCompressor, in db: Database
    ) throws {
        let rows = try Row.fetchCursor(
            db, sql: "SELECT row_id, contact_body(body) FROM contacts WHERE body != '' AND \(condition)",
            arguments: arguments)
        var bodies: [(Int64, String)] = []
        while let row = try rows.next() { bodies.append((row[0], row[1])) }
        let update = RawBinding(try db.cachedStatement(sql: "UPDATE contacts SET body = ?2 WHERE row_id = ?1"))
        for (rowID, body) in bodies {
            update.bind(1, rowID)
            try compressor.pack(body) { update.bind(2, blob: $0) }
            try update.execute(in: db)
        }
    }
}

/// `contact_body(body)`: a stored body as the JSON text Intercom sent, whether it is stored
/// compressed or as text. Registered on every connection to a mirror.
enum BodyFunctions {
    /// Registers the function with a cache of the connection's own, released with it.
    static func register(on connection: OpaquePointer) {
        let cache = Unmanaged.passRetained(ConnectionDictionaries()).toOpaque()
        sqlite3_create_function_v2(
            connection, "contact_body", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, cache, contactBody, nil, nil,
            { cache in cache.map { Unmanaged<ConnectionDictionaries>.fromOpaque($0).release() } })
    }

    /// The decompressors a read-only connection has loaded, by dictionary id. Such a connection
    /// only ever sees committed dictionaries, which never change, so an id names one dictionary
    /// for its life; a connection that writes could see one of its own that is rolled back
    /// later, so it asks the table for the dictionary's token each time instead, unless the
    /// cache lives within one of its transactions (`text(ofStored:in:cache:)`).
    final class ConnectionDictionaries: @unchecked Sendable {
        private let lock = NSLock()
        private var byID: [Int64: BodyDecompressor] = [:]

        func decompressor(_ id: Int64, load: () throws -> BodyDecompressor) rethrows -> BodyDecompressor {
            if let found = lock.withLock({ byID[id] }) { return found }
            let loaded = try load()
            lock.withLock { byID[id] = loaded }
            return loaded
        }
    }

    /// The text of a stored body (compressed or not), read inside one transaction of `db`
    /// with `cache`, which must not outlive it: each dictionary is read once, not once a body.
    static func text(ofStored body: DatabaseValue, in db: Database, cache: ConnectionDictionaries) throws -> String? {
        switch body.storage {
        case .string(let text):
            return text
        case .blob(let data):
            let (pointer, count) = try data.withUnsafeBytes { bytes in
                try unpack(bytes, on: db.sqliteConnection, cache: cache, withinOneTransaction: true)
            }
            defer { sqlite3_free(pointer) }
            return String(decoding: UnsafeRawBufferPointer(start: pointer, count: count), as: UTF8.self)
        default:
            return nil
        }
    }

    private static let contactBody: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = {
        context, _, arguments in
        guard let context, let value = arguments?[0] else { return }
        guard sqlite3_value_type(value) == SQLITE_BLOB else {
            sqlite3_result_value(context, value)
            return
        }
        let count = Int(sqlite3_value_bytes(value))
        let bytes = UnsafeRawBufferPointer(start: sqlite3_value_blob(value), count: count)
        do {
            let cache = sqlite3_user_data(context).map {
                Unmanaged<ConnectionDictionaries>.fromOpaque($0).takeUnretainedValue()
            }
            let (pointer, length) = try BodyFunctions.unpack(bytes, on: sqlite3_context_db_handle(context), cache: cache)
            sqlite3_result_text64(
                context, pointer.assumingMemoryBound(to: CChar.self), UInt64(length), sqlite3_free, UInt8(SQLITE_UTF8))
        } catch {
            sqlite3_result_error(context, "\(error)", -1)
        }
    }

    /// Decompresses a stored body into memory from `sqlite3_malloc`, with the dictionary its
    /// prefix names, read from `connection` when this process has not met it yet. `cache` is
    /// used on a read-only connection, or on any that `withinOneTransaction` says the cache
    /// lives no longer than one transaction of (a dictionary id names one dictionary there).
    static func unpack(
        _ bytes: UnsafeRawBufferPointer, on connection: OpaquePointer?, cache: ConnectionDictionaries? = nil,
        withinOneTransaction: Bool = false
    ) throws -> (UnsafeMutableRawPointer, Int) {
        guard let (id, length) = BodyCompression.readVarint(bytes) else {
            throw MirrorError(.corrupt, detail: "a stored body is cut short")
        }
        let decompressor: BodyDecompressor
        if id == 0 {
            decompressor = .plain
        } else if let cache, withinOneTransaction || sqlite3_db_readonly(connection, "main") == 1 {
            decompressor = try cache.decompressor(id) { try dictionary(id, on: connection) }
        } else {
            decompressor = try dictionary(id, on: connection)
        }
        let frame = UnsafeRawBufferPointer(rebasing: bytes[length...])
        // One byte more than the body: SQLite would copy a text handed over without a terminator.
        var target: UnsafeMutableRawPointer?
        guard
            let (pointer, count) = decompressor.unpack(
                frame,
                into: { size in
                    target = sqlite3_malloc64(UInt64(size + 1))
                    return target
                })
        else {
            sqlite3_free(target)
            throw MirrorError(
                .corrupt, detail: "a stored body is damaged (dictionary \(id))", remedy: .repairContacts)
        }
        pointer.storeBytes(of: 0, toByteOffset: count, as: UInt8.self)
        return (pointer, count)
    }

    private static func dictionary(_ id: Int64, on connection: OpaquePointer?) throws -> BodyDecompressor {
        var statement: OpaquePointer?
        let sql = "SELECT token, dictionary FROM body_dictionaries WHERE id = ?"
        guard sqlite3_prepare_v2(connection, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw MirrorError(.corrupt, detail: "the mirror's body dictionaries cannot be read")
        }
        defer { sqlite3_finalize(statement) }
        sqlite3_bind_int64(statement, 1, id)
        guard sqlite3_step(statement) == SQLITE_ROW else {
            throw MirrorError(.corrupt, detail: "the mirror lacks body dictionary \(id)")
        }
        let found = BodyCodecs.shared.decompressor(token: sqlite3_column_int64(statement, 0)) {
            BodyDecompressor(
                bytes: UnsafeRawBufferPointer(
                    start: sqlite3_column_blob(statement, 1), count: Int(sqlite3_column_bytes(statement, 1))))
        }
        guard let found else { throw MirrorError(.corrupt, detail: "the mirror's body dictionary \(id) is damaged") }
        return found
    }
}
