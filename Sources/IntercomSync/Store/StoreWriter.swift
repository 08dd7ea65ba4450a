import GRDB

/// The store's connection as its own files use it: GRDB's `read`, `write` and
/// `writeWithoutTransaction`, whose SQLite failures leave the store as `MirrorError`s (a full
/// disk, a read-only medium, a damaged file, a mirror locked past the busy timeout), so that no
/// GRDB type reaches a caller. Inside a transaction the code sees GRDB's own errors, and may
/// catch one (a constraint) to go on.
struct StoreWriter: Sendable {
    let base: any DatabaseWriter
    let path: String?

    func read<T>(_ value: (Database) throws -> T) throws -> T {
        try translating { try base.read(value) }
    }

    func read<T: Sendable>(_ value: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await translating { try await base.read(value) }
    }

    func write<T>(_ updates: (Database) throws -> T) throws -> T {
        try translating { try base.write(updates) }
    }

    func write<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await translating { try await base.write(updates) }
    }

    func writeWithoutTransaction<T>(_ updates: (Database) throws -> T) throws -> T {
        try translating { try base.writeWithoutTransaction(updates) }
    }

    func writeWithoutTransaction<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await translating { try await base.writeWithoutTransaction(updates) }
    }

    private func translating<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as DatabaseError { throw MirrorError(error, path: path) }
    }

    private func translating<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as DatabaseError { throw MirrorError(error, path: path) }
    }
}

extension MirrorError {
    /// What SQLite's failure means for the mirror at `path`, in a person's words: the one
    /// translation of SQLite's errors, for opening the mirror as for writing it. Never the
    /// statement: a person can do nothing with SQL, and it may hold values.
    init(_ error: DatabaseError, path: String?) {
        let message = error.message ?? "\(error.resultCode)"
        switch error.resultCode {
        case .SQLITE_FULL:
            self.init(
                .diskFull, path: path,
                detail: "the disk is full, so the mirror could not be written; everything committed before this "
                    + "point is kept and consistent", remedy: .freeSpace)
        case .SQLITE_READONLY:
            self.init(
                .readOnly, path: path, detail: "the mirror is read-only here (\(message)): queries work, writes do not",
                remedy: .openWritable)
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            self.init(.corrupt, path: path, detail: "SQLite finds the mirror damaged (\(message))", remedy: .checkMirror)
        case .SQLITE_CANTOPEN:
            self.init(
                .storage, path: path,
                detail: "SQLite cannot open the mirror's file (\(message)): check that its folder exists and that "
                    + "this user may open files there")
        case .SQLITE_BUSY:
            self.init(
                .busy, path: path,
                detail: "another process kept the mirror locked past the wait (\(message)); this call changed "
                    + "nothing, and what was committed before it is kept", remedy: .tryLater)
        default:
            // SQLITE_LOCKED among them: a conflict within this process, not another one's lock.
            self.init(
                .storage, path: path,
                detail: "the mirror failed: \(message) (SQLite error \(error.resultCode.rawValue))", remedy: .checkMirror)
        }
    }
}
