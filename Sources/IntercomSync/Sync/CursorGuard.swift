/// Keeps a paged walk moving forward. A server that answers a cursor it gave before, or the
/// same page again and again, would make a walk send the same request until killed; the guard
/// stops it with `SyncError.stalledWalk`. The pages before were committed, and the walk's
/// saved cursor is the last good one, so the next sync resumes from there.
struct CursorGuard {
    /// Pages in a row that repeat an earlier page of the walk before it is stopped.
    static let maximumRepeatedPages = 3
    /// Times a walk may start over because the server refused its cursor.
    static let maximumRefusedCursors = 3

    /// What is walked, for the error: "GET /contacts".
    let operation: String
    private var cursors: Set<String> = []
    private var pages: Set<Int> = []
    private var repeated = 0
    private var refused = 0
    private var fetched = 0

    init(_ operation: String, startingAfter cursor: String? = nil) {
        self.operation = operation
        if let cursor { cursors.insert(cursor) }
    }

    /// Checks a page (the ids it holds) and the cursor it gives for the next one. With `total`
    /// (the count the server gives for the walk), a walk that runs on far past it stops too:
    /// new contacts on every page, without end, would fill the disk.
    mutating func check(next cursor: String?, ids: [String], total: Int? = nil) throws {
        fetched += ids.count
        if let total, cursor != nil, fetched > 2 * total + 3_000 {
            throw stalled("sent \(fetched) contacts in a walk it counts \(total) for, and gives a cursor for more")
        }
        var hasher = Hasher()
        for id in ids { hasher.combine(id) }
        repeated = !ids.isEmpty && !pages.insert(hasher.finalize()).inserted ? repeated + 1 : 0
        if repeated >= Self.maximumRepeatedPages {
            throw stalled("sent a page it had sent before, \(repeated) times in a row")
        }
        if let cursor, !cursors.insert(cursor).inserted {
            throw stalled("answered with a cursor it had given before (\(cursor.prefix(40)))")
        }
    }

    /// The walk starts again from its beginning on purpose (its total shrank): the pages and
    /// cursors it meets again are no loop.
    mutating func restart() {
        fetched = 0
        cursors.removeAll()
        pages.removeAll()
        repeated = 0
    }

    /// The server refused the walk's cursor and the walk starts over; past a few times it stops.
    mutating func cursorRefused(_ error: any Error) throws {
        refused += 1
        guard refused <= Self.maximumRefusedCursors else {
            throw stalled("refused the walk's cursor \(refused) times (\(error))")
        }
        restart()
    }

    private func stalled(_ what: String) -> SyncError {
        SyncError(
            .stalledWalk,
            "\(operation): the server \(what), so the walk was stopped rather than looped. Every page before it is "
                + "kept; a later sync resumes from the last good page", remedy: .tryLater)
    }
}
