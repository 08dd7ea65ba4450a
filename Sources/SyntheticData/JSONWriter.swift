/// A minimal streaming JSON writer: fast enough to render a million contacts, and it keeps this
/// target free of Foundation.
struct JSONWriter {
    private(set) var text = ""
    private var needsComma = false

    mutating func beginObject() {
        separate()
        text += "{"
        needsComma = false
    }

    mutating func endObject() {
        text += "}"
        needsComma = true
    }

    mutating func key(_ name: String) {
        separate()
        appendString(name)
        text += ":"
        needsComma = false
    }

    mutating func raw(_ json: String) {
        separate()
        text += json
        needsComma = true
    }

    mutating func null() {
        raw("null")
    }

    mutating func field(_ name: String, _ value: String?) {
        key(name)
        if let value {
            separate()
            appendString(value)
            needsComma = true
        } else {
            null()
        }
    }

    mutating func field(_ name: String, _ value: Int?) {
        key(name)
        raw(value.map(String.init) ?? "null")
    }

    mutating func field(_ name: String, _ value: Bool) {
        key(name)
        raw(value ? "true" : "false")
    }

    private mutating func separate() {
        if needsComma { text += "," }
    }

    private mutating func appendString(_ value: String) {
        text += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
}

/// Renders generated contacts the way Intercom's list and search endpoints page them.
public enum IntercomPage {
    /// A `GET /contacts` page: `{"type":"list","data":[…],"total_count":N,"pages":{…}}`.
    public static func list(
        _ contacts: [SyntheticContact], page: Int, perPage: Int, totalCount: Int, nextCursor: String?
    ) -> String {
        let totalPages = perPage > 0 ? (totalCount + perPage - 1) / perPage : 0
        var text = #"{"type":"list","data":["#
        text += contacts.map { $0.intercomJSON() }.joined(separator: ",")
        text +=
            #"],"total_count":\#(totalCount),"pages":{"type":"pages","page":\#(page),"per_page":\#(perPage),"total_pages":\#(totalPages)"#
        if let nextCursor {
            var next = JSONWriter()
            next.beginObject()
            next.field("per_page", perPage)
            next.field("starting_after", nextCursor)
            next.endObject()
            text += #","next":"# + next.text
        }
        text += "}}"
        return text
    }
}
