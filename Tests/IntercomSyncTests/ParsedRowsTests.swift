import Foundation
import Testing

@testable import IntercomSync

/// The import's reading thread: rows in file order, a reader's error after the rows before it,
/// and a stop that does not wait for the file's end.
@Suite struct ParsedRowsTests {
    static func text(rows: Int) -> [UInt8] {
        Array(("n\n" + (0..<rows).map { "row \($0)" }.joined(separator: "\n")).utf8)
    }

    static func firstField(_ row: CSVRow) -> String {
        if case .record(_, let fields) = row { return fields[0] }
        return "malformed"
    }

    @Test func rowsComeOutInFileOrderInChunks() throws {
        let rows = ParsedRows(reader: CSVReader(bytes: Self.text(rows: 10_050)), chunkSize: 1_000, capacity: 2) { row in
            Self.firstField(row)
        }
        var items: [String] = []
        var chunks = 0
        while let chunk = try rows.next() {
            items += chunk.items
            chunks += 1
        }
        #expect(chunks == 11)
        #expect(items == ["n"] + (0..<10_050).map { "row \($0)" })
        #expect(try rows.next() == nil)
        #expect(rows.stop().bytesRead == Self.text(rows: 10_050).count)
    }

    @Test func aReadersErrorComesAfterTheRowsReadBeforeIt() throws {
        struct Died: Error {}
        let bytes = Self.text(rows: 5_000)
        var offset = 0
        let reader = CSVReader(chunkSize: 512) { buffer in
            if offset >= 20_000 { throw Died() }
            let count = min(buffer.count, bytes.count - offset)
            for index in 0..<count { buffer[index] = bytes[offset + index] }
            offset += count
            return count
        }
        let rows = ParsedRows(reader: reader, chunkSize: 100) { row in Self.firstField(row) }
        var items: [String] = []
        #expect(throws: Died.self) {
            while let chunk = try rows.next() { items += chunk.items }
        }
        #expect(items.count > 1_000 && items.count < 5_000)
        #expect(items.last == "row \(items.count - 2)", "the rows before the error, in order")
        _ = rows.stop()
    }

    /// A writer that gives up stops the reading thread, which waits for room, without reading on.
    @Test func stoppingEndsTheReadingThread() throws {
        let rows = ParsedRows(reader: CSVReader(bytes: Self.text(rows: 100_000)), chunkSize: 100, capacity: 1) { row in
            Self.firstField(row)
        }
        _ = try rows.next()
        let reader = rows.stop()
        #expect(reader.bytesRead < Self.text(rows: 100_000).count / 2)
    }
}
