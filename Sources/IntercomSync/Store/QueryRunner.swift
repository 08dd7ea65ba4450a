import GRDB

/// One SQL statement with its arguments.
struct PlannedStatement {
    var sql: String
    var values: [DatabaseValue]
    var arguments: StatementArguments { StatementArguments(values) }
}

/// Runs a query's statements: the mirror's own connection (`MirrorReader`) or one of the pool's.
protocol QueryRunner {
    func contacts(_ statement: PlannedStatement) throws -> [StoredContact]
    /// The first column of the first row, as an integer (0 without a row).
    func integer(_ statement: PlannedStatement) throws -> Int64
}

/// A pool connection running a query's statements.
struct PoolQueries: QueryRunner {
    let db: Database

    func contacts(_ statement: PlannedStatement) throws -> [StoredContact] {
        try StoredContact.fetchAll(db.cachedStatement(sql: statement.sql), arguments: statement.arguments)
    }

    func integer(_ statement: PlannedStatement) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: statement.sql), arguments: statement.arguments) ?? 0
    }
}

extension ContactMirror {
    /// A read on the pool's connections, for the queries the query path's own connection
    /// (`MirrorReader`) does not serve.
    func poolRead<T>(_ body: (Database) throws -> T) throws -> T {
        try writer.read(body)
    }

    /// Whether `sql` (?1: a contact's Intercom or local id) finds a row, asked on the query
    /// path's own connection where it can: the reads that are empty for most contacts (notes,
    /// edits, outbox entries) open no pool connection then, as `contacts get --offline` does not.
    func anyRow(_ sql: String, contact id: String) throws -> Bool {
        try anyRow(
            PlannedStatement(
                sql: "SELECT EXISTS (\(sql))".replacingOccurrences(
                    of: "?1", with: "ifnull((SELECT id FROM contact_aliases WHERE alias = ?1), ?1)"),
                values: [id.databaseValue]))
    }

    /// Whether `statement` (a `SELECT EXISTS`) answers true, asked as `anyRow(_:contact:)` asks.
    func anyRow(_ statement: PlannedStatement) throws -> Bool {
        if let found = try reader?.tryRead(snapshot: false, { session in try session.integer(statement) }) {
            return found != 0
        }
        return try poolRead { db in try PoolQueries(db: db).integer(statement) } != 0
    }
}
