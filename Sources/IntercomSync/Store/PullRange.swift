import GRDB

/// One range of a partitioned full pull: the contacts created in `lower..<upper` (seconds, each
/// bound the start of a day in the workspace's timezone; nil is unbounded), walked with
/// `POST /contacts/search` on its own cursor.
///
/// `created_at` never changes, so a contact cannot move from one range to another while the
/// pull runs, and together the ranges cover every second: the first is unbounded below, the last
/// above, and each begins where the one before ends.
struct PullRange: Sendable, Equatable {
    var seq: Int
    var lower: Int?
    var upper: Int?
    /// How many contacts search counted in the range when the plan was made.
    var expected: Int
    /// The cursor after the last committed page; nil before the first.
    var cursor: String?
    var fetched = 0
    var done = false
    /// The `total_count` search reported with the last committed page.
    var lastTotal: Int?
}

extension PullRange {
    /// The tables ranges are kept in: a full pull's, and an incremental pass's.
    enum Table: String, Sendable {
        case fullPull = "pull_ranges"
        case incremental = "incremental_ranges"
    }

    static func fetchAll(_ db: Database, table: Table = .fullPull) throws -> [PullRange] {
        try Row.fetchAll(
            db,
            sql: "SELECT seq, lower, upper, expected, cursor, fetched, done, last_total FROM \(table.rawValue) ORDER BY seq"
        )
        .map { row in
            PullRange(
                seq: row["seq"], lower: row["lower"], upper: row["upper"], expected: row["expected"],
                cursor: row["cursor"], fetched: row["fetched"], done: row["done"], lastTotal: row["last_total"])
        }
    }

    static func save(_ ranges: [PullRange], table: Table = .fullPull, in db: Database) throws {
        try db.execute(sql: "DELETE FROM \(table.rawValue)")
        for range in ranges {
            try db.execute(
                sql: """
                    INSERT INTO \(table.rawValue) (seq, lower, upper, expected, cursor, fetched, done, last_total)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    range.seq, range.lower, range.upper, range.expected, range.cursor, range.fetched, range.done,
                    range.lastTotal,
                ])
        }
    }

    /// Records a committed page of the range: the cursor after it (nil to walk the range again
    /// from its start), the total search reported with it, and whether it was the last.
    static func advance(
        seq: Int, cursor: String?, fetched: Int, total: Int?, done: Bool, table: Table, in db: Database
    ) throws {
        try db.execute(
            sql: "UPDATE \(table.rawValue) SET cursor = ?, fetched = fetched + ?, done = ?, last_total = ? WHERE seq = ?",
            arguments: [cursor, fetched, done, total, seq])
    }
}
