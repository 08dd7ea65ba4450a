import GRDB
import Testing

@testable import IntercomSync

/// Values bound through SQLite's C API, texts copied into the binding's arena.
@Suite struct RawBindingTests {
    @Test func textsAreStoredAsBoundRunAfterRun() throws {
        let queue = try DatabaseQueue()
        let large = String(repeating: "é", count: 40_000)  // 80,000 bytes: more than the arena holds
        let runs: [[String?]] = [
            ["ada@example.com", "", nil, "Zoë d'Arcy"],
            [large, "second", "x", nil],
            ["third", large, "Łukasz", ""],
            ["", "", "", ""],
        ]
        let stored = try queue.write { db in
            try db.execute(sql: "CREATE TABLE t (n INTEGER, a TEXT, b TEXT, c TEXT, d TEXT)")
            let statement = RawBinding(try db.cachedStatement(sql: "INSERT INTO t VALUES (?, ?, ?, ?, ?)"))
            for (number, texts) in runs.enumerated() {
                statement.bind(1, Int64(number))
                for (offset, text) in texts.enumerated() { statement.bind(Int32(offset + 2), text) }
                #expect(try statement.execute(in: db) == 1)
            }
            return try Row.fetchAll(db, sql: "SELECT a, b, c, d FROM t ORDER BY n").map { row in
                (0..<4).map { row[$0] as String? }
            }
        }
        #expect(stored == runs, "an empty text stays empty, not NULL; a large one goes in whole")
    }
}
