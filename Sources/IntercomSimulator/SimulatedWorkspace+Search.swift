import Foundation
import IntercomJSON

/// `GET /contacts` (the list, by cursor) and `POST /contacts/search`.
extension SimulatedWorkspace {

    func perPage(_ value: JSONValue?, default fallback: Int) throws -> Int {
        guard let value else { return fallback }
        let number = value.int ?? value.string.flatMap { Int($0) }
        guard let number, number > 0 else { throw APIError.invalid("per_page must be a positive integer", field: "per_page") }
        return min(number, 150)
    }

    func list(_ query: [String: String], version: APIVersion) throws -> String {
        let size = try perPage(query["per_page"].map(JSONValue.string), default: 10)
        var start = 0
        var page = 1
        if let cursor = query["starting_after"] {
            guard let position = Cursor(token: cursor) else {
                throw APIError.invalid("starting_after is not a valid cursor", field: "starting_after")
            }
            page = position.page + 1
            // First id created after the cursor's sequence.
            start = firstIndex(afterSequence: position.value)
        }
        var data: [String] = []
        var index = start
        var lastSequence = -1
        while index < order.count, data.count < size {
            if let contact = live(order[index]) {
                data.append(render(contact, version: version))
                lastSequence = contact.sequence
            }
            index += 1
        }
        contactsInAnswer = data.count
        let total = contacts.count - archived.count
        let hasMore = data.count == size && order[index...].contains { live($0) != nil }
        return self.page(
            data, total: total, page: page, perPage: size,
            next: hasMore ? Cursor(value: lastSequence, page: page).token : nil)
    }

    func firstIndex(afterSequence sequence: Int) -> Int {
        var low = 0
        var high = orderSequences.count
        while low < high {
            let middle = (low + high) / 2
            if orderSequences[middle] <= sequence { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// A `list` answer around already-rendered contacts.
    func page(_ data: [String], total: Int, page: Int, perPage: Int, next: String?) -> String {
        var pages: [String: JSONValue] = [
            "type": "pages", "page": .int(Int64(page)), "per_page": .int(Int64(perPage)),
            "total_pages": .int(Int64(max(1, (total + perPage - 1) / perPage))),
        ]
        if let next { pages["next"] = .object(["per_page": .int(Int64(perPage)), "starting_after": .string(next)]) }
        return #"{"type":"list","data":["# + data.joined(separator: ",") + #"],"total_count":\#(total),"pages":"#
            + JSONValue.object(pages).jsonText + "}"
    }

    func search(_ body: JSONValue, version: APIVersion) throws -> String {
        guard let query = body["query"] else { throw APIError.invalid("query is required", field: "query") }
        let filter = try SearchFilter.parse(query, days: version.isPreview ? nil : days)
        let size = try perPage(body["pagination"]?["per_page"], default: 50)
        var offset = 0
        var page = 1
        if let cursor = body["pagination"]?["starting_after"], cursor != .null {
            guard let token = cursor.string, let position = Cursor(token: token) else {
                throw APIError.invalid("starting_after is not a valid cursor", field: "starting_after")
            }
            offset = position.value
            page = position.page + 1
        }
        catchUpSearch()
        // A walk asks the same query page after page: its sorted matches are kept until anything
        // search sees changes (Intercom's own index answers a page in about the same time).
        let cacheKey = "\(version.isPreview)|\(query.jsonText)|\(body["sort"]?.jsonText ?? "")"
        if let matches = searchCache.matches(for: cacheKey, revision: searchRevision) {
            return searchPage(matches, offset: offset, size: size, page: page, version: version)
        }
        var order: (field: String, ascending: Bool)?
        if let sort = body["sort"] {
            let orderText = sort["order"]?.string ?? "descending"
            guard orderText == "ascending" || orderText == "descending" else {
                throw APIError(400, "invalid_sort_order", "Sort order must be ascending or descending")
            }
            order = (sort["field"]?.string ?? "updated_at", orderText == "ascending")
        }
        // Contacts held in creation order answer an unsorted or created_at-sorted query in that
        // order (ties keep creation order ascending).
        let inCreationOrder = order == nil || (order?.field == "created_at" && createdInOrder)
        let before: (SimContact, SimContact) -> Bool = { left, right in
            guard let (field, ascending) = order else { return left.sequence < right.sequence }
            let comparison = Self.compare(left.searchValue(field), right.searchValue(field))
            if comparison == 0 { return left.sequence < right.sequence }
            return ascending ? comparison < 0 : comparison > 0
        }
        let candidates = candidates(for: filter)
        let windows = createdInOrder ? filter.createdAtWindows : nil
        // A filter of one window of creation time is what the candidates' range already holds.
        let impliedByRange = windows?.count == 1
        let segments = segmentMembership()
        let found = candidates.lazy.compactMap(searchable).filter {
            impliedByRange || filter.matches($0, segments: segments)
        }
        let wanted = offset + size
        let byUpdate = order?.field == "updated_at"
        if let windows, inCreationOrder || byUpdate, configuration.searchLagSeconds == 0, wanted <= 1_000 {
            // Windows of creation time alone, as a planner's counts and the oldest, newest and
            // last updated contact ask: count the live ids of their ranges without copying a
            // contact, and read the `wanted` at the end the order starts from.
            let slices = windows.map { range(of: $0) }
            if byUpdate, let ascending = order?.ascending {
                // The `wanted` first by updated_at, ties in creation order, kept as positions.
                var total = 0
                var best: [(key: Int, position: Int)] = []
                for slice in slices {
                    for position in slice {
                        let id = self.order[position]
                        guard let index = contacts.index(forKey: id), !isArchived(id) else { continue }
                        total += 1
                        let updatedAt = contacts.values[index].updatedAt
                        let entry = (key: ascending ? updatedAt : -updatedAt, position: position)
                        if best.count == wanted, let last = best.last, (entry.key, entry.position) >= (last.key, last.position) {
                            continue
                        }
                        let at = best.firstIndex { ($0.key, $0.position) > (entry.key, entry.position) } ?? best.count
                        best.insert(entry, at: at)
                        if best.count > wanted { best.removeLast() }
                    }
                }
                let contacts = best.compactMap { live(self.order[$0.position]) }
                return searchPage(contacts, total: total, offset: offset, size: size, page: page, version: version)
            }
            let total = slices.reduce(0) { $0 + liveCount(in: $1) }
            var best: [SimContact] = []
            let descending = order?.ascending == false
            for slice in descending ? slices.reversed() : slices {
                var position = descending ? slice.upperBound - 1 : slice.lowerBound
                while best.count < wanted && slice.contains(position) {
                    if let contact = live(self.order[position]) { best.append(contact) }
                    position += descending ? -1 : 1
                }
            }
            return searchPage(best, total: total, offset: offset, size: size, page: page, version: version)
        }
        if wanted <= 1_000 && wanted * 8 < candidates.count {
            // The first pages of a large answer (a count, the oldest or newest contact): one pass
            // that keeps the best `wanted`, as an index would give them, rather than gathering and
            // sorting every match. (Deeper pages gather once, and are kept.)
            var total = 0
            var best: [SimContact] = []
            best.reserveCapacity(wanted + 1)
            if inCreationOrder && order?.ascending != false {
                for contact in found {
                    total += 1
                    if best.count < wanted { best.append(contact) }
                }
            } else if inCreationOrder {
                // Descending creation order: the last `wanted` (kept in a ring), newest first.
                var next = 0
                for contact in found {
                    total += 1
                    if best.count < wanted {
                        best.append(contact)
                    } else {
                        best[next] = contact
                        next = (next + 1) % wanted
                    }
                }
                best = Array((best[next...] + best[..<next]).reversed())
            } else {
                best = Self.first(wanted, of: found, by: before, counting: &total)
            }
            return searchPage(best, total: total, offset: offset, size: size, page: page, version: version)
        }
        var matches = Array(found)
        if inCreationOrder {
            if order?.ascending == false { matches.reverse() }
        } else {
            matches.sort(by: before)
        }
        searchCache.keep(matches, for: cacheKey, revision: searchRevision)
        return searchPage(matches, offset: offset, size: size, page: page, version: version)
    }

    /// A page of `matches` (sorted at least through `offset + size`), of `total` in all.
    func searchPage(
        _ matches: [SimContact], total: Int? = nil, offset: Int, size: Int, page: Int, version: APIVersion
    ) -> String {
        let total = total ?? matches.count
        let slice = matches.dropFirst(offset).prefix(size)
        let hasMore = offset + slice.count < total
        contactsInAnswer = slice.count
        return self.page(
            slice.map { render($0, version: version) }, total: total,
            page: page, perPage: size,
            next: hasMore ? Cursor(value: offset + slice.count, page: page).token : nil)
    }

    /// The first `count` of `items` in the order `before`, in that order.
    static func first(
        _ count: Int, of items: some Sequence<SimContact>, by before: (SimContact, SimContact) -> Bool,
        counting total: inout Int
    ) -> [SimContact] {
        var best: [SimContact] = []
        best.reserveCapacity(count + 1)
        for item in items {
            total += 1
            if best.count == count, let last = best.last, !before(item, last) { continue }
            var low = 0
            var high = best.count
            while low < high {
                let middle = (low + high) / 2
                if before(best[middle], item) { low = middle + 1 } else { high = middle }
            }
            best.insert(item, at: low)
            if best.count > count { best.removeLast() }
        }
        return best
    }

    /// The ids a search must look at, in creation order: all of them, or only the slice a
    /// `created_at` window of the filter allows (found by binary search, since contacts are
    /// held in creation order), which keeps a partitioned walk of a large workspace cheap.
    func candidates(for filter: SearchFilter) -> ArraySlice<String> {
        guard createdInOrder, let window = filter.createdAtWindow else { return order[...] }
        return order[range(of: window)]
    }

    /// The positions in `order` of the contacts created in `window` (contacts created in order).
    func range(of window: DateWindow) -> Range<Int> {
        func firstIndex(atLeast time: Int) -> Int {
            var low = 0
            var high = orderCreated.count
            while low < high {
                let middle = (low + high) / 2
                if orderCreated[middle] < time { low = middle + 1 } else { high = middle }
            }
            return low
        }
        let lower = window.lower == Int.min ? 0 : firstIndex(atLeast: window.lower)
        let upper = window.upper == Int.max ? order.count : firstIndex(atLeast: window.upper)
        return lower < upper ? lower..<upper : lower..<lower
    }

    static func compare(_ left: JSONValue?, _ right: JSONValue?) -> Int {
        switch (left, right) {
        case (.int(let a)?, .int(let b)?): return a < b ? -1 : (a > b ? 1 : 0)
        case (.string(let a)?, .string(let b)?): return a < b ? -1 : (a > b ? 1 : 0)
        case (.bool(let a)?, .bool(let b)?): return a == b ? 0 : (a ? 1 : -1)
        case (nil, nil): return 0
        case (nil, _): return -1
        case (_, nil): return 1
        default: return 0
        }
    }
}

/// An opaque pagination cursor: a position and the page it ended.
struct Cursor {
    var value: Int
    var page: Int

    init(value: Int, page: Int) {
        self.value = value
        self.page = page
    }

    init?(token: String) {
        guard let data = Data(base64Encoded: token), let text = String(data: data, encoding: .utf8) else { return nil }
        let parts = text.split(separator: ":")
        guard parts.count == 3, parts[0] == "sim", let value = Int(parts[1]), let page = Int(parts[2]) else { return nil }
        self.value = value
        self.page = page
    }

    var token: String { Data("sim:\(value):\(page)".utf8).base64EncodedString() }
}

/// A thrown error from the in-process control API.
public struct SimulatorError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The sorted answers of the searches walked lately, each valid until anything search sees
/// changes. Several: a partitioned pull walks dozens of queries at once, page by page, and a
/// cache of one answered every page by filtering and sorting its range again.
struct SearchCache {
    private var entries: [String: (revision: Int, matches: [SimContact], used: Int)] = [:]
    private var uses = 0
    /// Contacts held in all answers together, at most: a few times a large workspace.
    static let capacity = 2_000_000

    mutating func matches(for key: String, revision: Int) -> [SimContact]? {
        guard let entry = entries[key], entry.revision == revision else { return nil }
        uses += 1
        entries[key]?.used = uses
        return entry.matches
    }

    mutating func keep(_ matches: [SimContact], for key: String, revision: Int) {
        // Answers of an older revision are stale; then the least recently used go first.
        entries = entries.filter { $0.key != key && $0.value.revision == revision }
        var held = entries.values.reduce(0) { $0 + $1.matches.count }
        while held + matches.count > Self.capacity, let oldest = entries.min(by: { $0.value.used < $1.value.used }) {
            held -= oldest.value.matches.count
            entries.removeValue(forKey: oldest.key)
        }
        uses += 1
        entries[key] = (revision, matches, uses)
    }
}
