import Foundation
import IntercomJSON

/// `POST /contacts/search`'s query grammar (stable versions): a filter `{field, operator, value}`
/// or a group `{operator: AND|OR, value: [...]}`, at most 2 levels deep and 15 filters a group.
indirect enum SearchFilter {
    case all([SearchFilter])
    case any([SearchFilter])
    case field(String, SearchOperator, JSONValue, DateWindow?)

    enum FieldType: String {
        case string, integer, date, boolean, tag
    }

    static let maximumDepth = 2
    static let maximumFiltersPerGroup = 15

    static let stringFields: Set<String> = [
        "id", "role", "name", "avatar", "owner_id", "email", "email_domain", "phone", "formatted_phone", "external_id",
        "language_override", "browser", "browser_language", "os", "location.country", "location.region",
        "location.city",
    ]
    static let dateFields: Set<String> = [
        "created_at", "signed_up_at", "updated_at", "last_seen_at", "last_contacted_at", "last_replied_at",
        "last_email_opened_at", "last_email_clicked_at",
    ]
    static let booleanFields: Set<String> = ["unsubscribed_from_emails", "marked_email_as_spam", "has_hard_bounced"]

    static let operators: [FieldType: Set<SearchOperator>] = [
        .string: [.equal, .notEqual, .in, .notIn, .contains, .notContains, .startsWith, .endsWith],
        .integer: [.equal, .notEqual, .in, .notIn, .less, .greater, .lessOrEqual, .greaterOrEqual],
        .date: [.equal, .less, .greater],
        .boolean: [.equal, .notEqual, .in, .notIn],
        .tag: [.equal, .notEqual],
    ]

    /// Parses a query. `days` cuts date filters to whole days (stable versions); nil compares
    /// exact seconds (Preview).
    static func parse(_ query: JSONValue, days: DayCalendar?, depth: Int = 1) throws(APIError) -> SearchFilter {
        guard case .object(let fields) = query else { throw APIError.invalid("query must be an object", field: "query") }
        if let group = fields["operator"]?.string, group == "AND" || group == "OR" {
            guard depth <= maximumDepth else {
                throw APIError.invalid("Search queries can be nested at most \(maximumDepth) levels deep")
            }
            guard case .array(let members)? = fields["value"], !members.isEmpty else {
                throw APIError.invalid("\(group) needs an array of filters as its value")
            }
            guard members.count <= maximumFiltersPerGroup else {
                throw APIError.invalid("A search group can hold at most \(maximumFiltersPerGroup) filters, not \(members.count)")
            }
            var parsed: [SearchFilter] = []
            for member in members { parsed.append(try parse(member, days: days, depth: depth + 1)) }
            return group == "AND" ? .all(parsed) : .any(parsed)
        }
        guard let field = fields["field"]?.string else {
            throw APIError.invalid("each filter needs a field, an operator and a value")
        }
        guard let operatorText = fields["operator"]?.string, let op = SearchOperator(rawValue: operatorText) else {
            throw APIError.invalid("\(fields["operator"]?.jsonText ?? "a missing operator") is not a valid operator")
        }
        var value = fields["value"] ?? .null
        let type = try fieldType(field, value: value)
        // A date as a number with a fraction is read as its whole seconds: Singer's tap-intercom
        // sends `datetime.timestamp()` (`946684800.0`), and Intercom serves it.
        if type == .date, case .double(let seconds) = value, seconds.isFinite, abs(seconds) < 1e15 {
            value = .int(Int64(seconds.rounded(.down)))
        }
        guard operators[type]!.contains(op) else {
            throw APIError.invalid("The operator \(op.rawValue) is not supported for the \(type.rawValue) field \(field)")
        }
        try checkValue(value, of: type, field: field, op: op)
        var window: DateWindow?
        if type == .date, let days, let time = value.int {
            window = days.window(op, time)
        }
        return .field(field, op, value, window)
    }

    private static func fieldType(_ field: String, value: JSONValue) throws(APIError) -> FieldType {
        if stringFields.contains(field) { return .string }
        if dateFields.contains(field) { return .date }
        if booleanFields.contains(field) { return .boolean }
        if field == "tag_id" || field == "segment_id" { return .tag }
        if field.hasPrefix("custom_attributes."), field.count > "custom_attributes.".count {
            let sample: JSONValue
            if case .array(let items) = value, let first = items.first { sample = first } else { sample = value }
            switch sample {
            case .int: return .integer
            case .bool: return .boolean
            default: return .string
            }
        }
        throw APIError.invalid("\(field) is not a searchable field", field: field)
    }

    private static func checkValue(_ value: JSONValue, of type: FieldType, field: String, op: SearchOperator) throws(APIError) {
        func matchesType(_ item: JSONValue) -> Bool {
            switch (type, item) {
            case (_, .null): return true
            case (.string, .string), (.integer, .int), (.date, .int), (.boolean, .bool), (.tag, .string), (.tag, .int):
                return true
            default: return false
            }
        }
        if op == .in || op == .notIn {
            guard case .array(let items) = value, items.allSatisfy(matchesType) else {
                throw APIError.invalid("\(op.rawValue) on \(field) needs an array of \(type.rawValue) values")
            }
        } else if !matchesType(value) {
            throw APIError.invalid("The value for \(field) must be of type \(type.rawValue)", field: field)
        }
    }

    /// The `created_at` seconds every match lies in, when the filter bounds them: a
    /// `created_at` filter, or an AND holding some (intersected). Nil when nothing bounds them.
    var createdAtWindow: DateWindow? {
        switch self {
        case .field("created_at", let op, let value, let window):
            if let window { return window }
            guard let raw = value.int else { return nil }
            let time = Int(raw)
            switch op {
            case .equal: return DateWindow(lower: time, upper: time + 1)
            case .greater: return DateWindow(lower: time + 1)
            case .less: return DateWindow(upper: time)
            default: return nil
            }
        case .all(let filters):
            let windows = filters.compactMap(\.createdAtWindow)
            guard !windows.isEmpty else { return nil }
            return DateWindow(lower: windows.map(\.lower).max()!, upper: windows.map(\.upper).min()!)
        default:
            return nil
        }
    }

    /// The windows of `created_at` the filter is, sorted and apart, when it says nothing else:
    /// nil for any other filter. (The engine's "everything" is `< day 2 OR > day 2`, which in a
    /// workspace's timezone leaves a day between them.)
    var createdAtWindows: [DateWindow]? {
        switch self {
        case .field("created_at", _, _, _):
            return createdAtWindow.map { $0.lower < $0.upper ? [$0] : [] }
        case .all(let filters):
            guard !filters.isEmpty else { return nil }
            var windows: [DateWindow] = [DateWindow()]
            for filter in filters {
                guard let other = filter.createdAtWindows else { return nil }
                windows = windows.flatMap { window in
                    other.compactMap { part in
                        let both = DateWindow(lower: max(window.lower, part.lower), upper: min(window.upper, part.upper))
                        return both.lower < both.upper ? both : nil
                    }
                }
            }
            return windows.sorted { $0.lower < $1.lower }
        case .any(let filters):
            guard !filters.isEmpty else { return nil }
            var parts: [DateWindow] = []
            for filter in filters {
                guard let windows = filter.createdAtWindows else { return nil }
                parts += windows
            }
            var union: [DateWindow] = []
            for part in parts.sorted(by: { $0.lower < $1.lower }) {
                if let last = union.last, part.lower <= last.upper {
                    union[union.count - 1].upper = max(last.upper, part.upper)
                } else {
                    union.append(part)
                }
            }
            return union
        default:
            return nil
        }
    }

    func matches(_ contact: SimContact, segments: SegmentMembership) -> Bool {
        switch self {
        case .all(let filters): return filters.allSatisfy { $0.matches(contact, segments: segments) }
        case .any(let filters): return filters.contains { $0.matches(contact, segments: segments) }
        case .field(let field, let op, let value, let window):
            if field == "tag_id" {
                let tagged = (value.string ?? value.int.map(String.init)).map(contact.tagIDs.contains) ?? false
                return op == .notEqual ? !tagged : tagged
            }
            if field == "segment_id" {
                let member =
                    (value.string ?? value.int.map(String.init)).map {
                        segments.contains(contact, segmentID: $0)
                    } ?? false
                return op == .notEqual ? !member : member
            }
            return op.holds(contact.searchValue(field), value, window: window)
        }
    }
}

enum SearchOperator: String {
    case equal = "=", notEqual = "!=", `in` = "IN", notIn = "NIN", contains = "~", notContains = "!~"
    case startsWith = "^", endsWith = "$", less = "<", greater = ">", lessOrEqual = "<=", greaterOrEqual = ">="

    func holds(_ actual: JSONValue?, _ expected: JSONValue, window: DateWindow?) -> Bool {
        if let window, case .int(let time)? = actual {
            return window.contains(Int(time))
        }
        switch self {
        case .equal: return Self.equal(actual, expected)
        case .notEqual: return !Self.equal(actual, expected)
        case .in, .notIn:
            guard case .array(let items) = expected else { return false }
            let found = items.contains { Self.equal(actual, $0) }
            return self == .in ? found : !found
        case .contains, .notContains, .startsWith, .endsWith:
            guard case .string(let text)? = actual, case .string(let part) = expected else { return self == .notContains }
            let haystack = text.lowercased()
            let needle = part.lowercased()
            switch self {
            case .contains: return haystack.contains(needle)
            case .notContains: return !haystack.contains(needle)
            case .startsWith: return haystack.hasPrefix(needle)
            default: return haystack.hasSuffix(needle)
            }
        case .less, .greater, .lessOrEqual, .greaterOrEqual:
            guard case .int(let left)? = actual, case .int(let right) = expected else { return false }
            switch self {
            case .less: return left < right
            case .greater: return left > right
            case .lessOrEqual: return left <= right
            default: return left >= right
            }
        }
    }

    private static func equal(_ actual: JSONValue?, _ expected: JSONValue) -> Bool {
        switch (actual, expected) {
        case (nil, .null), (.null?, .null): return true
        case (.string(let left)?, .string(let right)): return left.lowercased() == right.lowercased()
        case (let left?, let right): return left == right
        default: return false
        }
    }
}

/// The seconds a day-cut date filter matches: `lower..<upper`.
struct DateWindow {
    var lower = Int.min
    var upper = Int.max

    func contains(_ time: Int) -> Bool { time >= lower && time < upper }
}

/// Days in the workspace timezone, for stable-version date filters: `=` X is
/// the whole of day(X), `>` X starts the day after, `<` X ends before day(X).
struct DayCalendar {
    let calendar: Calendar

    init(timezone: String) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: timezone) ?? TimeZone(secondsFromGMT: 0)!
        self.calendar = calendar
    }

    func startOfDay(_ time: Int) -> Int {
        Int(calendar.startOfDay(for: Date(timeIntervalSince1970: TimeInterval(time))).timeIntervalSince1970)
    }

    func startOfNextDay(_ time: Int) -> Int {
        let start = calendar.startOfDay(for: Date(timeIntervalSince1970: TimeInterval(time)))
        return Int(calendar.date(byAdding: .day, value: 1, to: start)!.timeIntervalSince1970)
    }

    func window(_ op: SearchOperator, _ time: Int) -> DateWindow {
        switch op {
        case .equal: return DateWindow(lower: startOfDay(time), upper: startOfNextDay(time))
        case .greater: return DateWindow(lower: startOfNextDay(time))
        default: return DateWindow(upper: startOfDay(time))
        }
    }
}
