import GRDB

/// A value read from one row of the mirror. GRDB's record fetching, without making the public
/// types that conform (`StoredContact`, `OutboxEntry`) GRDB records in the library's API.
protocol MirrorRow {
    init(row: Row) throws
}

extension MirrorRow {
    static func fetchAll(_ db: Database, sql: String, arguments: StatementArguments = StatementArguments()) throws
        -> [Self]
    {
        try Array(Row.fetchCursor(db, sql: sql, arguments: arguments).map { try Self(row: $0) })
    }

    static func fetchAll(_ statement: Statement, arguments: StatementArguments = StatementArguments()) throws -> [Self] {
        try Array(Row.fetchCursor(statement, arguments: arguments).map { try Self(row: $0) })
    }

    static func fetchOne(_ db: Database, sql: String, arguments: StatementArguments = StatementArguments()) throws
        -> Self?
    {
        try Row.fetchOne(db, sql: sql, arguments: arguments).map { try Self(row: $0) }
    }
}
