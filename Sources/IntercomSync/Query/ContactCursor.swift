import Foundation

/// A keyset-pagination position: the sort key and row of the last contact of a page.
///
/// Its `token` is an opaque string for command lines and scripts.
public struct ContactCursor: Sendable, Hashable {
    public enum Key: Sendable, Hashable {
        case integer(Int64)
        case text(String)
        case real(Double)
    }

    public var sort: ContactSort
    public var key: Key
    public var rowID: Int64

    public init(sort: ContactSort, key: Key, rowID: Int64) {
        self.sort = sort
        self.key = key
        self.rowID = rowID
    }

    private struct Wire: Decodable {
        var f: String
        var d: Bool
        var i: Int64?
        var s: String?
        var x: Double?
        var r: Int64
    }

    /// The cursor as an opaque, URL-safe string: `Wire` as JSON, in base64. Written by hand
    /// (JSONEncoder's first use costs a command a millisecond); read by JSONDecoder.
    public var token: String {
        var json = #"{"f":"\#(sort.field.rawValue)","d":\#(sort.descending),"r":\#(rowID),"#
        switch key {
        case .integer(let value): json += #""i":\#(value)}"#
        case .text(let value):
            json += #""s":"#
            JSONValue.appendQuoted(value, to: &json)
            json += "}"
        case .real(let value): json += #""x":\#(value)}"#
        }
        return Data(json.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Reads a cursor from its `token`.
    public init(token: String) throws {
        var base64 = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64),
            let wire = try? JSONDecoder().decode(Wire.self, from: data),
            let field = ContactSort.Field(rawValue: wire.f)
        else {
            throw QueryError("the cursor \"\(token)\" is not one this tool produced")
        }
        sort = ContactSort(field, descending: wire.d)
        rowID = wire.r
        if let value = wire.i {
            key = .integer(value)
        } else if let value = wire.s {
            key = .text(value)
        } else if let value = wire.x {
            key = .real(value)
        } else {
            throw QueryError("the cursor \"\(token)\" is not one this tool produced")
        }
    }
}
