#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One row of a CSV file, or why it could not be read.
package enum CSVRow: Sendable, Equatable {
    /// A well-formed record: its fields, and the physical line (1-based) it starts on.
    case record(line: Int, fields: [String])
    /// A row that cannot be used. `text` is what could be recovered of it (invalid UTF-8
    /// replaced), for an errors file.
    case malformed(line: Int, reason: String, text: String)

    package var line: Int {
        switch self {
        case .record(let line, _), .malformed(let line, _, _): line
        }
    }
}

/// A streaming RFC 4180 reader over bytes.
///
/// It reads quoted fields with doubled quotes, delimiters and line breaks inside quotes, LF or
/// CRLF line ends, a UTF-8 byte-order mark, blank lines (skipped) and a last line without a line
/// end. The delimiter is given, or found from the first line: Excel's `sep=;` line names it (and
/// is not a record); otherwise the most frequent of `,` `;` tab `|` outside quotes, comma on a
/// tie. A UTF-16 file is refused with the way to convert it.
/// Line numbers are physical lines, so a record with a line break inside a quoted field moves
/// the count on by two. A row with an unterminated quote, invalid UTF-8, text after a closing
/// quote, or a field count other than the first row's is returned as `.malformed` and reading
/// goes on with the next row. Memory is bounded by `maximumRowBytes`, whatever the file's size:
/// a longer row is reported (saying whether it is one long quoted value that closes, or a
/// quote still open), and reading resumes at the next line end.
///
/// It depends on nothing but the C library, so `scripts/fuzz-csv` compiles it alone.
package struct CSVReader {
    /// Fills the buffer it is given from the start and returns the byte count; 0 at the end.
    package typealias Source = (UnsafeMutableRawBufferPointer) throws -> Int

    package static let defaultMaximumRowBytes = 1 << 20
    /// The end of a row's reason when a field is not UTF-8.
    package static let notUTF8 = "is not valid UTF-8"

    private let source: Source
    private let maximumRowBytes: Int
    private var chunk: [UInt8]
    private var position = 0
    private var available = 0
    private var exhausted = false
    private var startedFile = false
    /// The physical line the next byte belongs to.
    private var line = 1
    /// Fields in the first record; later records must match it.
    package private(set) var width: Int?
    /// The byte between fields: given, or found at the first row (`,` until then).
    package private(set) var delimiter: UInt8
    private let detectDelimiter: Bool

    // The record being read: its bytes, where each field ends, and whether it went wrong.
    private var bytes: [UInt8] = []
    private var fieldEnds: [Int] = []

    /// Bytes consumed so far, for progress.
    package private(set) var bytesRead = 0

    package init(
        maximumRowBytes: Int = defaultMaximumRowBytes, chunkSize: Int = 1 << 16, delimiter: UInt8? = nil,
        source: @escaping Source
    ) {
        self.source = source
        self.delimiter = delimiter ?? Self.comma
        detectDelimiter = delimiter == nil
        self.maximumRowBytes = maximumRowBytes
        chunk = [UInt8](repeating: 0, count: max(chunkSize, 16))
    }

    /// Reads bytes already in memory.
    package init(bytes input: [UInt8], maximumRowBytes: Int = defaultMaximumRowBytes, delimiter: UInt8? = nil) {
        var offset = 0
        self.init(maximumRowBytes: maximumRowBytes, delimiter: delimiter) { buffer in
            let count = min(buffer.count, input.count - offset)
            if count > 0 {
                input.withUnsafeBytes { source in
                    buffer.baseAddress!.copyMemory(from: source.baseAddress! + offset, byteCount: count)
                }
            }
            offset += count
            return count
        }
    }

    /// Reads a file descriptor (a file, a pipe, standard input) until its end. The descriptor is
    /// not closed.
    package init(fileDescriptor: Int32, maximumRowBytes: Int = defaultMaximumRowBytes, delimiter: UInt8? = nil) {
        self.init(maximumRowBytes: maximumRowBytes, delimiter: delimiter, source: Self.reading(fileDescriptor: fileDescriptor))
    }

    /// A source that reads a file descriptor until its end.
    package static func reading(fileDescriptor: Int32) -> Source {
        { buffer in
            while true {
                let count = read(fileDescriptor, buffer.baseAddress, buffer.count)
                if count >= 0 { return count }
                if errno != EINTR { throw CSVReadError(errno: errno) }
            }
        }
    }

    private mutating func nextByte() throws -> UInt8? {
        if position == available {
            guard !exhausted else { return nil }
            available = try chunk.withUnsafeMutableBytes { try source($0) }
            position = 0
            if available == 0 {
                exhausted = true
                return nil
            }
        }
        let byte = chunk[position]
        position += 1
        bytesRead += 1
        return byte
    }

    private mutating func peekByte() throws -> UInt8? {
        guard let byte = try nextByte() else { return nil }
        position -= 1
        bytesRead -= 1
        return byte
    }

    private static let quote = UInt8(ascii: "\"")
    private static let comma = UInt8(ascii: ",")
    private static let lf = UInt8(ascii: "\n")
    private static let cr = UInt8(ascii: "\r")

    /// The next row, or nil at the end of the input.
    package mutating func next() throws -> CSVRow? {
        if !startedFile {
            startedFile = true
            try skipByteOrderMark()
            try readDialect()
        }
        while true {
            bytes.removeAll(keepingCapacity: true)
            fieldEnds.removeAll(keepingCapacity: true)
            let startLine = line
            guard let first = try peekByte() else { return nil }
            if first == Self.lf || first == Self.cr {
                try consumeLineEnd()
                continue  // A blank line is not a record.
            }
            if let problem = try readRecord() {
                if rowLength > maximumRowBytes { try skipRestOfLine() }
                return .malformed(line: startLine, reason: problem, text: recoveredText())
            }
            return try finish(startLine: startLine)
        }
    }

    /// Reads one record's bytes into `bytes`/`fieldEnds` up to and including its line end.
    /// Returns a problem, or nil when the record is well-formed.
    private mutating func readRecord() throws -> String? {
        var problem: String?
        while true {
            // At the start of a field.
            if try peekByte() == Self.quote {
                _ = try nextByte()
                let openedOn = line
                quoted: while true {
                    guard let byte = try nextByte() else {
                        return "the quote opened on line \(openedOn) is never closed"
                    }
                    if byte == Self.quote {
                        if try peekByte() == Self.quote {
                            _ = try nextByte()
                            bytes.append(Self.quote)
                            continue
                        }
                        break quoted
                    }
                    if byte == Self.lf { line += 1 }
                    bytes.append(byte)
                    if bytes.count > maximumRowBytes {
                        let field = fieldEnds.count + 1
                        if try quoteClosesOnThisLine() {
                            return "field \(field) is a quoted value longer than the \(maximumRowBytes)-byte limit of a row "
                                + "(its quote, opened on line \(openedOn), closes on line \(line))"
                        }
                        return "the row is longer than \(maximumRowBytes) bytes: the quote of field \(field), opened on line "
                            + "\(openedOn), is still open on line \(line)"
                    }
                }
                // After a closing quote only a comma or a line end may follow.
                var stray = false
                while let byte = try peekByte(), byte != delimiter, byte != Self.lf, byte != Self.cr {
                    _ = try nextByte()
                    bytes.append(byte)
                    stray = true
                    if bytes.count > maximumRowBytes { return "the row is longer than \(maximumRowBytes) bytes" }
                }
                if stray, problem == nil { problem = "text after the closing quote of field \(fieldEnds.count + 1)" }
            } else {
                while let byte = try peekByte(), byte != delimiter, byte != Self.lf, byte != Self.cr {
                    _ = try nextByte()
                    bytes.append(byte)
                    if bytes.count > maximumRowBytes { return "the row is longer than \(maximumRowBytes) bytes" }
                }
            }
            fieldEnds.append(bytes.count)
            guard let separator = try peekByte() else { return problem }
            if separator == delimiter {
                _ = try nextByte()
                // Delimiters count too: a row of nothing but commas is as long as its bytes.
                if rowLength > maximumRowBytes { return "the row is longer than \(maximumRowBytes) bytes" }
                continue
            }
            try consumeLineEnd()
            return problem
        }
    }

    private mutating func consumeLineEnd() throws {
        guard let byte = try nextByte() else { return }
        if byte == Self.cr, try peekByte() == Self.lf { _ = try nextByte() }
        line += 1
    }

    /// Inside a quoted field that outgrew the limit: reads on, storing nothing, to the end of the
    /// physical line, and tells whether the quote closes there (a lone quote followed by the
    /// delimiter or the line end). What a too-long row needs is a different hint, not its bytes.
    private mutating func quoteClosesOnThisLine() throws -> Bool {
        while let byte = try peekByte(), byte != Self.lf, byte != Self.cr {
            _ = try nextByte()
            guard byte == Self.quote else { continue }
            guard let after = try peekByte() else { return true }
            if after == Self.quote {
                _ = try nextByte()
            } else if after == delimiter || after == Self.lf || after == Self.cr {
                return true
            }
        }
        return false
    }

    /// The bytes of the record being read, its delimiters included.
    private var rowLength: Int { bytes.count + fieldEnds.count }

    /// The most bytes a line that outgrew the limit is read on for its end, before the input is
    /// taken for something other than rows of text (`/dev/zero`, a binary file).
    static let maximumSkippedBytes = 64 << 20

    private mutating func skipRestOfLine() throws {
        var skipped = 0
        while let byte = try peekByte() {
            skipped += 1
            if skipped > Self.maximumSkippedBytes {
                throw CSVReadError(
                    message: "line \(line) runs on for more than \(Self.maximumSkippedBytes >> 20) MB without a line end: "
                        + "this is not a file of CSV rows")
            }
            if byte == Self.lf || byte == Self.cr {
                try consumeLineEnd()
                return
            }
            _ = try nextByte()
        }
    }

    /// At the start of the file: refuses UTF-16, takes a `sep=X` line's delimiter (and the line),
    /// or finds the delimiter from the first line in the buffer.
    private mutating func readDialect() throws {
        guard try peekByte() != nil else { return }
        let start = chunk[position..<available]
        if start.count >= 2,
            (start.first == 0xFF && start.dropFirst().first == 0xFE)
                || (start.first == 0xFE && start.dropFirst().first == 0xFF)
        {
            throw CSVReadError(
                message: "the file is UTF-16 (its byte-order mark says so), and imports read UTF-8: convert it first, "
                    + "for example `iconv -f UTF-16 -t UTF-8 file.csv > file-utf8.csv`")
        }
        let sep = Array("sep=".utf8)
        if start.count >= 5, Array(start.prefix(4)).map({ $0 | 0x20 }) == sep,
            let named = start.dropFirst(4).first, named != Self.lf, named != Self.cr,
            start.count == 5 || [Self.lf, Self.cr].contains(start[start.startIndex + 5])
        {
            delimiter = named
            for _ in 0..<5 { _ = try nextByte() }
            try consumeLineEnd()
            return
        }
        guard detectDelimiter else { return }
        // Read the whole first line (however the input is cut into chunks: the result must not
        // depend on it), count the candidates outside quotes, then put the line back in front
        // of what is left of the chunk.
        var line: [UInt8] = []
        var counts: [UInt8: Int] = [:]
        var quoted = false
        while line.count <= maximumRowBytes, let byte = try peekByte() {
            if byte == Self.quote { quoted.toggle() }
            if !quoted && (byte == Self.lf || byte == Self.cr) { break }
            _ = try nextByte()
            line.append(byte)
            if !quoted && Self.candidates.contains(byte) { counts[byte, default: 0] += 1 }
        }
        // The most frequent; on a tie, the first of `candidates` (comma first).
        var best = (byte: Self.comma, count: 0)
        for candidate in Self.candidates where counts[candidate, default: 0] > best.count {
            best = (candidate, counts[candidate, default: 0])
        }
        delimiter = best.byte
        let size = chunk.count
        chunk = line + chunk[position..<available]
        available = chunk.count
        // Later reads fill the whole buffer: keep it at least its old size.
        if chunk.count < size { chunk += [UInt8](repeating: 0, count: size - chunk.count) }
        position = 0
        bytesRead -= line.count
    }

    private static let candidates: [UInt8] = [UInt8(ascii: ","), UInt8(ascii: ";"), 0x09, UInt8(ascii: "|")]

    private mutating func skipByteOrderMark() throws {
        guard try peekByte() == 0xEF else { return }
        // The three bytes are in the first chunk unless the input is shorter than that.
        if available - position >= 3, chunk[position + 1] == 0xBB, chunk[position + 2] == 0xBF {
            position += 3
            bytesRead += 3
        }
    }

    /// Whether every byte is below 0x80, eight at a time.
    static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var offset = 0
        while offset + 8 <= bytes.count {
            if UnsafeRawPointer(base + offset).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
            offset += 8
        }
        while offset < bytes.count {
            if base[offset] >= 0x80 { return false }
            offset += 1
        }
        return true
    }

    private mutating func finish(startLine: Int) throws -> CSVRow {
        var fields: [String] = []
        fields.reserveCapacity(fieldEnds.count)
        var start = 0
        for (index, end) in fieldEnds.enumerated() {
            let text = bytes.withUnsafeBufferPointer { buffer in
                let field = UnsafeBufferPointer(rebasing: buffer[start..<end])
                // ASCII is valid UTF-8 as it stands; the generic validating initializer costs
                // several times more (it looks its encoding's metadata up at every call).
                return Self.isASCII(field) ? String(decoding: field, as: UTF8.self) : String(validating: field, as: UTF8.self)
            }
            guard let text else {
                return .malformed(line: startLine, reason: "field \(index + 1) \(Self.notUTF8)", text: recoveredText())
            }
            fields.append(text)
            start = end
        }
        if let width, fields.count != width {
            return .malformed(
                line: startLine, reason: "\(fields.count) field\(fields.count == 1 ? "" : "s") where the header has \(width)",
                text: recoveredText())
        }
        if width == nil { width = fields.count }
        return .record(line: startLine, fields: fields)
    }

    /// The row's fields joined by commas, invalid UTF-8 replaced, cut to 1,000 characters.
    private func recoveredText() -> String {
        var start = 0
        var parts: [String] = []
        for end in fieldEnds {
            parts.append(String(decoding: bytes[start..<end], as: UTF8.self))
            start = end
        }
        if start < bytes.count { parts.append(String(decoding: bytes[start..<min(bytes.count, start + 1000)], as: UTF8.self)) }
        var text = parts.joined(separator: ",")
        while text.last == "\n" || text.last == "\r" || text.last == "\r\n" { text.removeLast() }
        return text.count > 1000 ? String(text.prefix(1000)) : text
    }
}

/// The input could not be read at all (not a row's problem).
package struct CSVReadError: Error, Sendable, CustomStringConvertible {
    package var description: String

    package init(errno: Int32) {
        description = "cannot read the file: " + String(cString: strerror(errno))
    }

    package init(message: String) {
        description = message
    }
}
