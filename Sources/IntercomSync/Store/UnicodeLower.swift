import Foundation
import GRDBSQLite

/// `contact_lower(text)`: the text in lower case by Unicode's rules, where SQLite's own `lower`,
/// `LIKE` and `NOCASE` fold only ASCII letters. A filter whose value has letters beyond ASCII
/// ("ZOË", "ÜÑÍ@EXÄMPLE.COM") compares both sides through it; an ASCII value keeps the indexed
/// ASCII comparison, which for ASCII text is the same.
enum UnicodeLower {
    static let name = "contact_lower"

    static func register(on connection: OpaquePointer) {
        sqlite3_create_function_v2(
            connection, name, 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nil, lower, nil, nil, nil)
    }

    private static let lower: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = {
        context, _, arguments in
        guard let context, let value = arguments?[0], let bytes = sqlite3_value_text(value) else {
            sqlite3_result_null(context)
            return
        }
        let text = String(decoding: UnsafeRawBufferPointer(start: bytes, count: Int(sqlite3_value_bytes(value))), as: UTF8.self)
        let lowered = text.lowercased()
        // SQLITE_TRANSIENT: SQLite copies the text before the Swift string goes.
        lowered.withCString { sqlite3_result_text(context, $0, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self)) }
    }

    /// Whether `text` has a character SQLite's ASCII folding does not know.
    static func needsUnicode(_ text: String) -> Bool {
        text.utf8.contains { $0 >= 0x80 }
    }
}
