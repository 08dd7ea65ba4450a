import Foundation
import Testing

@testable import IntercomSync

@Suite struct CSVReaderTests {
    static func rows(_ text: String, chunkSize: Int = 1 << 16, maximumRowBytes: Int = 1 << 20) throws -> [CSVRow] {
        try rows(Array(text.utf8), chunkSize: chunkSize, maximumRowBytes: maximumRowBytes)
    }

    static func rows(_ bytes: [UInt8], chunkSize: Int = 1 << 16, maximumRowBytes: Int = 1 << 20) throws -> [CSVRow] {
        var offset = 0
        var reader = CSVReader(maximumRowBytes: maximumRowBytes, chunkSize: chunkSize) { buffer in
            let count = min(buffer.count, bytes.count - offset)
            for index in 0..<count { buffer[index] = bytes[offset + index] }
            offset += count
            return count
        }
        var rows: [CSVRow] = []
        while let row = try reader.next() { rows.append(row) }
        return rows
    }

    @Test func quotedFieldsHoldCommasQuotesAndLineBreaks() throws {
        let rows = try Self.rows("a,b,c\n\"x, y\",\"say \"\"hi\"\"\",\"two\r\nlines\"\nplain,,end")
        #expect(
            rows == [
                .record(line: 1, fields: ["a", "b", "c"]),
                .record(line: 2, fields: ["x, y", "say \"hi\"", "two\r\nlines"]),
                .record(line: 4, fields: ["plain", "", "end"]),
            ])
    }

    @Test func theDelimiterIsFoundFromTheHeaderOrASepLine() throws {
        #expect(
            try Self.rows("Email;Name;Notes\na@b.io;\"Ann; Jr\";\"x,y\"\n")
                == [
                    .record(line: 1, fields: ["Email", "Name", "Notes"]), .record(line: 2, fields: ["a@b.io", "Ann; Jr", "x,y"]),
                ])
        #expect(try Self.rows("email\tname\na@b.io\tA\n").last == .record(line: 2, fields: ["a@b.io", "A"]))
        #expect(try Self.rows("email|name\na@b.io|A\n").last == .record(line: 2, fields: ["a@b.io", "A"]))
        // Excel's first line names the delimiter and is no record; lines still count from the file's start.
        #expect(
            try Self.rows("\u{FEFF}sep=;\r\nemail;name\r\na@b.io;A\r\n") == [
                .record(line: 2, fields: ["email", "name"]), .record(line: 3, fields: ["a@b.io", "A"]),
            ])
        // Delimiters inside quotes do not count; a tie goes to the comma; one column is one column.
        #expect(try Self.rows("\"a;b;c\",d\n1,2\n").first == .record(line: 1, fields: ["a;b;c", "d"]))
        #expect(try Self.rows("a;b,c\n").first == .record(line: 1, fields: ["a;b", "c"]))
        #expect(try Self.rows("email\nx@y.io\n").last == .record(line: 2, fields: ["x@y.io"]))
        // Found from the whole first line, however the input comes in chunks (the fuzzer found
        // both cases: a delimiter past the first chunk, and a tie between two).
        for text in ["a_very_long_first_column_name\tb\tc,d\n1\t2\t3,4\n", "Ema;u|Ful\nx;y|z\n"] {
            #expect(try Self.rows(text, chunkSize: 16) == Self.rows(text))
        }
        #expect(try Self.rows("Ema;u|Ful\n").first == .record(line: 1, fields: ["Ema", "u|Ful"]))
        // Given, the delimiter is not guessed.
        var given = CSVReader(bytes: Array("a;b,c\n".utf8), delimiter: UInt8(ascii: ";"))
        #expect(try given.next() == .record(line: 1, fields: ["a", "b,c"]))
    }

    /// Delimiters count toward a row's bound: a row of nothing but commas is refused at the
    /// bound, not gathered into millions of empty fields; input that never ends its line (a
    /// device, a binary file) is given up after 64 MB instead of read forever.
    @Test func rowsOfDelimitersAndLinesWithoutEndAreBounded() throws {
        var bytes = Array("email,name\n".utf8) + [UInt8](repeating: UInt8(ascii: ","), count: 3 << 20)
        bytes += Array("\nann@example.com,Ann\n".utf8)
        var reader = CSVReader(bytes: bytes)
        #expect(try reader.next() == .record(line: 1, fields: ["email", "name"]))
        guard case .malformed(_, let reason, _)? = try reader.next() else {
            Issue.record("the row of commas was not refused")
            return
        }
        #expect(reason.contains("longer than"), "\(reason)")
        #expect(try reader.next() == .record(line: 3, fields: ["ann@example.com", "Ann"]))

        var served = 0
        var endless = CSVReader { buffer in
            buffer.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "a"))
            served += buffer.count
            return buffer.count
        }
        #expect(throws: CSVReadError.self) { while try endless.next() != nil {} }
        #expect(served < 80 << 20, "gave up after \(served >> 20) MB")
    }

    @Test func aUTF16FileIsRefusedWithTheWayToConvertIt() throws {
        for bytes in [[0xFF, 0xFE, 0x65, 0x00], [0xFE, 0xFF, 0x00, 0x65]] as [[UInt8]] {
            #expect {
                try Self.rows(bytes)
            } throws: { error in
                "\(error)".contains("UTF-16") && "\(error)".contains("iconv -f UTF-16 -t UTF-8")
            }
        }
    }

    @Test func byteOrderMarkCRLFAndBlankLinesAreHandled() throws {
        let rows = try Self.rows("\u{FEFF}email,name\r\n\r\na@b.io,A\r\n\r\n\r\n")
        #expect(rows == [.record(line: 1, fields: ["email", "name"]), .record(line: 3, fields: ["a@b.io", "A"])])
        // A BOM is only skipped at the start; elsewhere it is data.
        #expect(try Self.rows("x\n\u{FEFF}y\n") == [.record(line: 1, fields: ["x"]), .record(line: 2, fields: ["\u{FEFF}y"])])
    }

    @Test func unterminatedQuoteIsAnErrorForItsRow() throws {
        let rows = try Self.rows("a,b\n1,2\n3,\"never closed\n4,5\n")
        #expect(rows.count == 3)
        #expect(rows[1] == .record(line: 2, fields: ["1", "2"]))
        guard case .malformed(let line, let reason, let text) = rows[2] else {
            Issue.record("expected a malformed row, got \(rows[2])")
            return
        }
        #expect(line == 3)
        #expect(reason == "the quote opened on line 3 is never closed")
        #expect(text.hasPrefix("3,never closed"))
    }

    @Test func wrongFieldCountTextAfterAQuoteAndInvalidUTF8AreErrorsAndReadingGoesOn() throws {
        var bytes = Array("h1,h2\n1\n\"a\"b,c\n".utf8)
        bytes += [0x78, 0xFF, 0x2C, 0x79, 0x0A]  // x\xFF,y
        bytes += Array("ok,fine".utf8)
        let rows = try Self.rows(bytes)
        #expect(rows.map(\.line) == [1, 2, 3, 4, 5])
        #expect(rows[1] == .malformed(line: 2, reason: "1 field where the header has 2", text: "1"))
        #expect(rows[2] == .malformed(line: 3, reason: "text after the closing quote of field 1", text: "ab,c"))
        #expect(rows[3] == .malformed(line: 4, reason: "field 1 is not valid UTF-8", text: "x\u{FFFD},y"))
        #expect(rows[4] == .record(line: 5, fields: ["ok", "fine"]))
    }

    @Test func aRowLongerThanTheLimitIsReportedAndReadingResumesAtTheNextLine() throws {
        let long = String(repeating: "z", count: 300)
        let rows = try Self.rows("a\n\(long)\nb\n\"\(long)\nc\n", maximumRowBytes: 100)
        #expect(rows.count == 5)
        #expect(rows[0] == .record(line: 1, fields: ["a"]))
        guard case .malformed(2, let reason, _) = rows[1] else {
            Issue.record("\(rows[1])")
            return
        }
        #expect(reason.contains("longer than 100 bytes"))
        #expect(rows[2] == .record(line: 3, fields: ["b"]))
        guard case .malformed(4, let quoted, _) = rows[3] else {
            Issue.record("\(rows[3])")
            return
        }
        #expect(quoted.contains("opened on line 4, is still open"))
        #expect(rows[4] == .record(line: 5, fields: ["c"]))
    }

    @Test func aLongQuotedValueThatClosesIsNotCalledAnOpenQuote() throws {
        let long = String(repeating: "z", count: 300)
        let rows = try Self.rows("a,b\n1,\"\(long)\"\"\(long)\"\n2,3\n", maximumRowBytes: 100)
        #expect(rows.count == 3)
        guard case .malformed(2, let reason, _) = rows[1] else {
            Issue.record("\(rows[1])")
            return
        }
        #expect(reason.contains("field 2 is a quoted value longer than the 100-byte limit"), "\(reason)")
        #expect(reason.contains("closes on line 2"))
        #expect(!reason.contains("still open"))
        #expect(rows[2] == .record(line: 3, fields: ["2", "3"]))
    }

    @Test func emptyInputAndALoneLineEndHaveNoRows() throws {
        #expect(try Self.rows("").isEmpty)
        #expect(try Self.rows("\r\n\n").isEmpty)
        #expect(try Self.rows("\u{FEFF}").isEmpty)
        #expect(try Self.rows("\"\"") == [.record(line: 1, fields: [""])])
    }

    /// Chunk boundaries fall everywhere: a tiny chunk must read exactly what one big chunk reads.
    @Test func chunkBoundariesChangeNothing() throws {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [String] = ["a", "é", ",", "\"", "\"\"", "\n", "\r\n", "\r", " ", "x,y", "\u{FEFF}"]
        for _ in 0..<300 {
            let text = (0..<Int.random(in: 0...60, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
                .joined()
            let whole = try Self.rows(text)
            #expect(try Self.rows(text, chunkSize: 16) == whole, "\(text.debugDescription)")
        }
    }

    @Test func readsAFileDescriptorAndCountsBytes() throws {
        let directory = try TemporaryDirectory()
        let path = directory.url.appendingPathComponent("x.csv").path
        let text = "email\n" + (0..<20_000).map { "user\($0)@example.com" }.joined(separator: "\n")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let descriptor = open(path, O_RDONLY)
        defer { close(descriptor) }
        var reader = CSVReader(fileDescriptor: descriptor)
        var count = 0
        while let row = try reader.next() {
            guard case .record = row else {
                Issue.record("\(row)")
                return
            }
            count += 1
        }
        #expect(count == 20_001)
        #expect(reader.bytesRead == text.utf8.count)
    }

    /// The ASCII check that lets a field skip UTF-8 validation finds a high byte at any position.
    @Test func theASCIICheckFindsAHighByteAnywhere() {
        for length in 0...24 {
            let ascii = [UInt8](repeating: 0x7F, count: length)
            #expect(ascii.withUnsafeBufferPointer(CSVReader.isASCII))
            for position in 0..<length {
                var bytes = ascii
                bytes[position] = 0x80
                #expect(!bytes.withUnsafeBufferPointer(CSVReader.isASCII), "\(length) bytes, high at \(position)")
            }
        }
    }
}
