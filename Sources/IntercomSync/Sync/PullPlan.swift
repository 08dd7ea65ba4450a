import Foundation
import IntercomJSON

extension PullRange {
    /// The order a range is walked in. Search pages by position, so a contact that leaves the
    /// range behind the cursor makes the next page skip one: the walk sees the total shrink and
    /// walks the range again. A contact that joins behind the cursor only makes a page repeat
    /// one. Contacts are created at the end of the last range (unbounded above), so that one is
    /// walked newest first: there, every creation lands behind the cursor and can offset a
    /// removal only by repeating a contact, never by hiding a skip from the total.
    var sort: String { upper == nil ? "descending" : "ascending" }

    /// The search filter for the range. Stable API versions cut date filters to whole days in
    /// the workspace's timezone, and allow only `=`, `<` and `>` on dates: `> X` matches from
    /// the start of the day after day(X), so `> lower - 1` starts at `lower`, a day's first
    /// second; `< upper` ends before day(upper). (Versions that compare exact seconds read the
    /// same filter the same way.)
    var query: JSONValue { query(updatedAfter: nil) }

    /// The range's filter, and with `floor` only the contacts updated after it (an incremental
    /// pass split by `created_at`), in one flat `AND`.
    func query(updatedAfter floor: Int?) -> JSONValue {
        let filters = [
            floor.map { Self.filter(">", $0, field: "updated_at") }, lower.map { Self.filter(">", $0 - 1) },
            upper.map { Self.filter("<", $0) },
        ].compactMap { $0 }
        switch filters.count {
        case 0: return Self.everything
        case 1: return filters[0]
        default: return .object(["operator": "AND", "value": .array(filters)])
        }
    }

    /// A filter every contact matches: created before a day, or from that day on.
    static let everything: JSONValue = .object([
        "operator": "OR", "value": .array([filter("<", 86_400 * 2), filter(">", 86_400 * 2 - 1)]),
    ])

    static func filter(_ op: String, _ time: Int, field: String = "created_at") -> JSONValue {
        .object(["field": .string(field), "operator": .string(op), "value": .int(Int64(time))])
    }
}

/// Cuts a workspace into `PullRange`s of about `target` contacts each, from the counts search
/// reports (`total_count`), on day boundaries of the workspace's timezone (DST days are simply
/// 23 or 25 hours long).
///
/// A span of days holding more than 1.5 × `target` contacts is cut into as many parts of equal days
/// as it needs (count ÷ target, at most 64 a round); one count request a part but the last tells
/// how many each holds (the last holds the rest), or every part when `countingEveryPart`: a
/// count that fetches its span's first page saves the walk that page, so the last part is worth
/// its request there. The requests of a round go out together, so a
/// workspace spread evenly is planned in one round trip or two, and a lopsided one (a bulk
/// import day) in a few more. Then neighbours are joined while they stay within `target`. A
/// single day can hold more than `target`; it stays one range, walked first.
struct PullPlanner: Sendable {
    let calendar: Calendar
    let target: Int
    let concurrency: Int
    let countingEveryPart: Bool
    /// The most parts a span is cut into in one round.
    static let maximumParts = 64

    init(timezone: String?, target: Int, concurrency: Int, countingEveryPart: Bool = false) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timezone.flatMap(TimeZone.init(identifier:)) ?? TimeZone(identifier: "UTC")!
        self.calendar = calendar
        self.target = max(1, target)
        self.concurrency = max(1, concurrency)
        self.countingEveryPart = countingEveryPart
    }

    func startOfDay(_ time: Int) -> Int {
        Int(calendar.startOfDay(for: Date(timeIntervalSince1970: TimeInterval(time))).timeIntervalSince1970)
    }

    /// The first second of every day from day(first) to the day after day(last).
    func dayStarts(from first: Int, through last: Int) -> [Int] {
        var days = [startOfDay(first)]
        let end = startOfDay(last)
        var day = Date(timeIntervalSince1970: TimeInterval(days[0]))
        while days.last! <= end {
            // Noon of the next day, then its start: steps over DST changes whatever their hour.
            day = calendar.date(byAdding: .hour, value: 36, to: day)!
            let start = startOfDay(Int(day.timeIntervalSince1970))
            day = Date(timeIntervalSince1970: TimeInterval(start))
            days.append(start)
        }
        return days
    }

    /// Plans the ranges of a workspace of `total` contacts created between `first` and `last`.
    /// `count(lower, upper)` asks search how many were created in `lower..<upper`, each bound
    /// nil where the span reaches the workspace's edge, as the range it may become does. After each
    /// round of counts, `retarget` (if any) may lower the target for the rounds after it and the
    /// joins: what it depends on (the server's round trip) is known better once counts came back.
    func plan(
        total: Int, first: Int, last: Int, retarget: (@Sendable () -> Int)? = nil,
        count: @escaping @Sendable (Int?, Int?) async throws -> Int
    ) async throws -> [PullRange] {
        var target = self.target
        let days = dayStarts(from: first, through: last)
        // Spans of day indices: days[from]..<days[to], and how many contacts they hold.
        typealias Span = (from: Int, to: Int, count: Int)
        // Half as much again as the target is still a range: parts cut to the target land a
        // little above or below it, and cutting each one above again would double the counts.
        func needsCutting(_ span: Span) -> Bool { 2 * span.count > 3 * target && span.to - span.from > 1 }
        var leaves: [Span] = []
        var frontier: [Span] = [(0, days.count - 1, total)]
        while !frontier.isEmpty {
            leaves += frontier.filter { !needsCutting($0) }
            // Each span to cut, and the day indices of its cuts.
            let cuts: [(span: Span, at: [Int])] = frontier.filter(needsCutting).map { span in
                let parts = min(Self.maximumParts, span.to - span.from, (span.count + target - 1) / target)
                let at = (1..<parts).map { span.from + (span.to - span.from) * $0 / parts }
                return (span, Array(Set(at)).sorted())
            }
            // One count a part but the last of each span (or every part), `concurrency` at a time.
            let asks = cuts.enumerated().flatMap { index, cut in
                zip([cut.span.from] + cut.at, cut.at + (countingEveryPart ? [cut.span.to] : [])).map { (index, $0.0, $0.1) }
            }
            var counted: [Int: [Int: Int]] = [:]
            for batch in stride(from: 0, to: asks.count, by: concurrency) {
                let slice = Array(asks[batch..<min(asks.count, batch + concurrency)])
                let results = try await withThrowingTaskGroup(of: (Int, Int, Int).self) { group in
                    for (index, from, to) in slice {
                        let lower = from == 0 ? nil : days[from]
                        let upper = to == days.count - 1 ? nil : days[to]
                        group.addTask { (index, from, try await count(lower, upper)) }
                    }
                    var results: [(Int, Int, Int)] = []
                    for try await result in group { results.append(result) }
                    return results
                }
                for (index, from, value) in results { counted[index, default: [:]][from] = value }
            }
            if let retarget, !asks.isEmpty { target = max(1, min(target, retarget())) }
            frontier = []
            for (index, cut) in cuts.enumerated() {
                var left = cut.span.count
                for (from, to) in zip([cut.span.from] + cut.at, cut.at) {
                    let value = counted[index]?[from] ?? 0
                    frontier.append((from, to, value))
                    left -= value
                }
                let last = cut.at.last ?? cut.span.from
                frontier.append((last, cut.span.to, counted[index]?[last] ?? max(0, left)))
            }
        }
        leaves.sort { $0.from < $1.from }
        var joined: [Span] = []
        for leaf in leaves {
            if let last = joined.last, last.count + leaf.count <= target {
                joined[joined.count - 1] = (last.from, leaf.to, last.count + leaf.count)
            } else {
                joined.append(leaf)
            }
        }
        // The biggest first, so that no long range is left running alone at the end.
        let ordered = joined.enumerated().sorted { ($0.element.count, $1.offset) > ($1.element.count, $0.offset) }
        return ordered.enumerated().map { seq, entry in
            let (index, span) = entry
            return PullRange(
                seq: seq + 1, lower: index == 0 ? nil : days[span.from], upper: index == joined.count - 1 ? nil : days[span.to],
                expected: span.count)
        }
    }
}
