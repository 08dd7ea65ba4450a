import Foundation

/// Why a JSON text could not be read, and where.
public struct JSONReadError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// Byte offset in the text where reading stopped.
    public var offset: Int

    public var description: String { "invalid JSON at byte \(offset): \(message)" }
}

/// A strict, allocation-light JSON reader (RFC 8259) over UTF-8 bytes.
///
/// It reads values on demand: a caller walks objects and arrays member by member, reads the
/// values it needs and skips (while still validating) the rest. The mirror's bulk upsert uses
/// it to take a page apart in one pass, keeping each contact's raw bytes as its body.
package struct JSONReader {
    package let bytes: UnsafeBufferPointer<UInt8>
    package private(set) var offset = 0
    private var depth = 0

    /// Nesting deeper than this is refused rather than risking the stack.
    package static let maximumDepth = 512

    package init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// Reads a whole text as one value; trailing non-space bytes are an error.
    package static func value(of text: String) throws -> JSONValue {
        var text = text
        return try text.withUTF8 { bytes in
            var reader = JSONReader(bytes)
            let value = try reader.readValue()
            try reader.expectEnd()
            return value
        }
    }

    package func error(_ message: String) -> JSONReadError {
        JSONReadError(message: message, offset: offset)
    }

    package mutating func skipWhitespace() {
        while offset < bytes.count {
            switch bytes[offset] {
            case 0x20, 0x0A, 0x0D, 0x09: offset += 1
            default: return
            }
        }
    }

    /// The next non-space byte, not consumed.
    package mutating func peek() -> UInt8? {
        skipWhitespace()
        return offset < bytes.count ? bytes[offset] : nil
    }

    package mutating func expect(_ byte: UInt8) throws(JSONReadError) {
        guard peek() == byte else {
            throw error(offset < bytes.count ? "expected '\(Character(Unicode.Scalar(byte)))'" : "unexpected end of text")
        }
        offset += 1
    }

    package mutating func expectEnd() throws(JSONReadError) {
        if peek() != nil { throw error("unexpected text after the value") }
    }

    /// Calls `body` with each member's key, positioned at the member's value, which `body` must
    /// read or skip.
    package mutating func readObject(_ body: (inout JSONReader, String) throws(JSONReadError) -> Void) throws(JSONReadError) {
        try readObjectKeys { (reader, key) throws(JSONReadError) in try body(&reader, key.string) }
    }

    /// `readObject` for a hot path: each member's name comes as a `JSONKey`, compared by its bytes,
    /// with no `String` made for it.
    package mutating func readObjectKeys(_ body: (inout JSONReader, JSONKey) throws(JSONReadError) -> Void)
        throws(JSONReadError)
    {
        try expect(UInt8(ascii: "{"))
        try enter()
        defer { depth -= 1 }
        if peek() == UInt8(ascii: "}") {
            offset += 1
            return
        }
        while true {
            guard peek() == UInt8(ascii: "\"") else { throw error("expected a member name in quotes") }
            let key = try readKey()
            try expect(UInt8(ascii: ":"))
            try body(&self, key)
            switch peek() {
            case UInt8(ascii: ","): offset += 1
            case UInt8(ascii: "}"):
                offset += 1
                return
            default: throw error("expected ',' or '}' after an object member")
            }
        }
    }

    /// A member name: its bytes between the quotes, or decoded when it has escapes.
    private mutating func readKey() throws(JSONReadError) -> JSONKey {
        let start = offset + 1
        var scan = start
        while scan < bytes.count, bytes[scan] != UInt8(ascii: "\""), bytes[scan] != UInt8(ascii: "\\"),
            bytes[scan] >= 0x20
        {
            scan += 1
        }
        if scan < bytes.count, bytes[scan] == UInt8(ascii: "\"") {
            offset = scan + 1
            return JSONKey(bytes: UnsafeBufferPointer(rebasing: bytes[start..<scan]))
        }
        return JSONKey(decoded: Array(try readString().utf8))
    }

    /// Calls `body` positioned at each element, which `body` must read or skip.
    package mutating func readArray(_ body: (inout JSONReader) throws(JSONReadError) -> Void) throws(JSONReadError) {
        try expect(UInt8(ascii: "["))
        try enter()
        defer { depth -= 1 }
        if peek() == UInt8(ascii: "]") {
            offset += 1
            return
        }
        while true {
            try body(&self)
            switch peek() {
            case UInt8(ascii: ","): offset += 1
            case UInt8(ascii: "]"):
                offset += 1
                return
            default: throw error("expected ',' or ']' after an array element")
            }
        }
    }

    private mutating func enter() throws(JSONReadError) {
        depth += 1
        if depth > Self.maximumDepth { throw error("nested deeper than \(Self.maximumDepth) levels") }
    }

    /// Skips one value, validating it, and returns the byte range it spanned.
    @discardableResult
    package mutating func skipValue() throws(JSONReadError) -> Range<Int> {
        skipWhitespace()
        let start = offset
        switch peek() {
        case UInt8(ascii: "{"): try readObjectKeys { (reader, _) throws(JSONReadError) in try reader.skipValue() }
        case UInt8(ascii: "["): try readArray { (reader) throws(JSONReadError) in try reader.skipValue() }
        case UInt8(ascii: "\""): try skipString()
        default: _ = try readScalar()
        }
        return start..<offset
    }

    /// Reads one value of any type.
    package mutating func readValue() throws(JSONReadError) -> JSONValue {
        switch peek() {
        case UInt8(ascii: "{"):
            var fields: [String: JSONValue] = [:]
            try readObject { (reader, key) throws(JSONReadError) in fields[key] = try reader.readValue() }
            return .object(fields)
        case UInt8(ascii: "["):
            var items: [JSONValue] = []
            try readArray { (reader) throws(JSONReadError) in items.append(try reader.readValue()) }
            return .array(items)
        case UInt8(ascii: "\""):
            return .string(try readString())
        default:
            return try readScalar()
        }
    }

    /// `null`, `true`, `false` or a number.
    private mutating func readScalar() throws(JSONReadError) -> JSONValue {
        guard let first = peek() else { throw error("unexpected end of text") }
        switch first {
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try readNumber()
        default:
            throw error("unexpected character '\(Character(Unicode.Scalar(first)))'")
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONReadError) {
        let count = word.utf8CodeUnitCount
        guard offset + count <= bytes.count,
            memcmp(bytes.baseAddress! + offset, word.utf8Start, count) == 0
        else { throw error("expected \(word)") }
        offset += count
    }

    private mutating func readNumber() throws(JSONReadError) -> JSONValue {
        let start = offset
        var isInteger = true
        if bytes[offset] == UInt8(ascii: "-") { offset += 1 }
        guard offset < bytes.count, isDigit(bytes[offset]) else { throw error("expected a digit") }
        if bytes[offset] == UInt8(ascii: "0") {
            offset += 1
            if offset < bytes.count, isDigit(bytes[offset]) { throw error("a number may not start with 0") }
        } else {
            skipDigits()
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
            isInteger = false
            offset += 1
            guard offset < bytes.count, isDigit(bytes[offset]) else { throw error("expected a digit after '.'") }
            skipDigits()
        }
        if offset < bytes.count, bytes[offset] | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            offset += 1
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") { offset += 1 }
            guard offset < bytes.count, isDigit(bytes[offset]) else { throw error("expected a digit in the exponent") }
            skipDigits()
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
        if isInteger, let integer = Int64(text) { return .int(integer) }
        guard let number = Double(text) else { throw error("the number \(text) is out of range") }
        return .double(number)
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private mutating func skipDigits() {
        while offset < bytes.count, isDigit(bytes[offset]) { offset += 1 }
    }

    /// Reads a string, decoding its escapes.
    package mutating func readString() throws(JSONReadError) -> String {
        try expect(UInt8(ascii: "\""))
        let start = offset
        // Fast path: no escapes, the bytes are the string.
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
                offset += 1
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw error("a control character inside a string") }
            offset += 1
        }
        var decoded = Array(bytes[start..<offset])
        while offset < bytes.count {
            let byte = bytes[offset]
            switch byte {
            case UInt8(ascii: "\""):
                offset += 1
                return String(decoding: decoded, as: UTF8.self)
            case UInt8(ascii: "\\"):
                offset += 1
                try readEscape(into: &decoded)
            case ..<0x20:
                throw error("a control character inside a string")
            default:
                decoded.append(byte)
                offset += 1
            }
        }
        throw error("unterminated string")
    }

    private mutating func skipString() throws(JSONReadError) {
        try expect(UInt8(ascii: "\""))
        while offset < bytes.count {
            switch bytes[offset] {
            case UInt8(ascii: "\""):
                offset += 1
                return
            case UInt8(ascii: "\\"):
                offset += 1
                var ignored: [UInt8] = []
                try readEscape(into: &ignored)
            case ..<0x20:
                throw error("a control character inside a string")
            default:
                offset += 1
            }
        }
        throw error("unterminated string")
    }

    private mutating func readEscape(into decoded: inout [UInt8]) throws(JSONReadError) {
        guard offset < bytes.count else { throw error("unterminated string") }
        let escape = bytes[offset]
        offset += 1
        switch escape {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
        case UInt8(ascii: "b"): decoded.append(0x08)
        case UInt8(ascii: "f"): decoded.append(0x0C)
        case UInt8(ascii: "n"): decoded.append(0x0A)
        case UInt8(ascii: "r"): decoded.append(0x0D)
        case UInt8(ascii: "t"): decoded.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try readHex4()
            if (0xD800..<0xDC00).contains(scalar) {
                guard offset + 1 < bytes.count, bytes[offset] == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u")
                else { throw error("a lone UTF-16 surrogate in \\u escape") }
                offset += 2
                let low = try readHex4()
                guard (0xDC00..<0xE000).contains(low) else { throw error("a lone UTF-16 surrogate in \\u escape") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(scalar) {
                throw error("a lone UTF-16 surrogate in \\u escape")
            }
            decoded.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
        default:
            throw error("an unknown escape \\\(Character(Unicode.Scalar(escape)))")
        }
    }

    private mutating func readHex4() throws(JSONReadError) -> UInt32 {
        guard offset + 4 <= bytes.count else { throw error("a short \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("a bad hex digit in \\u escape")
            }
            value = value << 4 | UInt32(digit)
            offset += 1
        }
        return value
    }

    /// The text of a byte range, as it appears in the input.
    package func text(_ range: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }
}

/// A member name read by `JSONReader.readObjectKeys`, valid while the reader's bytes are.
package struct JSONKey {
    private let bytes: UnsafeBufferPointer<UInt8>?
    private let decoded: [UInt8]

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        decoded = []
    }

    init(decoded: [UInt8]) {
        bytes = nil
        self.decoded = decoded
    }

    /// Whether the name is `name`, byte for byte.
    package func `is`(_ name: StaticString) -> Bool {
        name.withUTF8Buffer { expected in
            if let bytes {
                return bytes.count == expected.count
                    && (expected.count == 0 || memcmp(bytes.baseAddress!, expected.baseAddress!, expected.count) == 0)
            }
            return decoded.elementsEqual(expected)
        }
    }

    package var string: String {
        bytes.map { String(decoding: $0, as: UTF8.self) } ?? String(decoding: decoded, as: UTF8.self)
    }
}
