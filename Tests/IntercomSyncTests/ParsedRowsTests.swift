import Foundation
import Synchronization
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

    /// The threads that made and freed `Tracked` items.
    final class Threads: Sendable {
        let made = Mutex<Set<UInt>>([])
        let freed = Mutex<[UInt]>([])
    }

    /// Records the thread that frees it.
    final class Tracked: Sendable {
        let threads: Threads

        init(threads: Threads) {
            self.threads = threads
            threads.made.withLock { _ = $0.insert(UInt(bitPattern: Int(pthread_self()))) }
        }

        deinit {
            let thread = UInt(bitPattern: Int(pthread_self()))
            threads.freed.withLock { $0.append(thread) }
        }
    }

    @Test func itemsHandedBackAreFreedByTheReadingThread() throws {
        let threads = Threads()
        let rows = ParsedRows(reader: CSVReader(bytes: Self.text(rows: 10_000)), chunkSize: 1_000, capacity: 1) { _ in
            Tracked(threads: threads)
        }
        var chunks = 0
        while let chunk = try rows.next() {
            chunks += 1
            let items = chunk.items
            _ = consume chunk
            rows.recycle(consume items)
        }
        _ = rows.stop()
        #expect(chunks == 11)
        let reader = try #require(threads.made.withLock { $0.count == 1 ? $0.first : nil })
        // The reader frees what came back before its last chunks; the rest waits for the end.
        let byReader = threads.freed.withLock { freed in freed.filter { $0 == reader }.count }
        #expect(byReader >= 8_000)
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
