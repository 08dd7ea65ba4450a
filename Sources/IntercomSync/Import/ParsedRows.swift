import Foundation

/// A CSV file's rows, read, mapped and checked on a thread of their own while the caller writes
/// the previous ones: reading and checking a row costs nearly as much as writing it, and a
/// second core does it meanwhile (a 1M-row load went from 10.7 s to about 6).
///
/// Rows come out in file order, in chunks; at most `capacity` chunks wait, so memory stays
/// bounded whatever the file's size. An error of the reader comes out after the rows read before
/// it, where a reader read in place would have thrown it.
final class ParsedRows<Item: Sendable>: @unchecked Sendable {
    /// A chunk of items, and how far the reader had got once it was full.
    struct Chunk: Sendable {
        var items: [Item]
        var bytesRead: Int
    }

    private let condition = NSCondition()
    private var ready: [Chunk] = []
    private var finished = false
    private var stopped = false
    private var failure: (any Error)?
    private var producerDone = false
    /// Items the caller is done with, freed by the reading thread (`recycle`).
    private var spent: [[Item]] = []
    private let capacity: Int
    /// The reader, owned by the producer thread until it is done.
    private var reader: CSVReader

    /// Starts reading `reader` on a new thread, turning each row into an item with `transform`.
    init(
        reader: CSVReader, chunkSize: Int = 1_000, capacity: Int = 4,
        transform: @escaping @Sendable (CSVRow) -> Item
    ) {
        self.reader = reader
        self.capacity = capacity
        let thread = Thread { [self] in produce(chunkSize: chunkSize, transform: transform) }
        thread.name = "intercom-sync csv"
        thread.start()
    }

    private func produce(chunkSize: Int, transform: (CSVRow) -> Item) {
        var items: [Item] = []
        items.reserveCapacity(chunkSize)
        var error: (any Error)?
        var atEnd = false
        while !atEnd {
            do {
                if let row = try reader.next() {
                    items.append(transform(row))
                } else {
                    atEnd = true
                }
            } catch let thrown {
                error = thrown
                atEnd = true
            }
            guard items.count == chunkSize || atEnd else { continue }
            let chunk = Chunk(items: items, bytesRead: reader.bytesRead)
            items.removeAll(keepingCapacity: true)
            condition.lock()
            while ready.count >= capacity && !stopped { condition.wait() }
            if stopped { atEnd = true }
            if !chunk.items.isEmpty { ready.append(chunk) }
            if atEnd {
                failure = error
                finished = true
            }
            var returned: [[Item]] = []
            swap(&returned, &spent)
            condition.broadcast()
            condition.unlock()
            returned.removeAll()
        }
        condition.lock()
        producerDone = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next chunk, nil at the end of the file; throws the reader's error after the last
    /// chunk read before it.
    func next() throws -> Chunk? {
        condition.lock()
        defer { condition.unlock() }
        while ready.isEmpty && !finished { condition.wait() }
        if !ready.isEmpty {
            let chunk = ready.removeFirst()
            condition.broadcast()
            return chunk
        }
        if let failure {
            self.failure = nil
            throw failure
        }
        return nil
    }

    /// Hands back the items of a chunk the caller is done with, so that the reading thread,
    /// which allocated them, frees them too. Freed on the writing thread, each string of a row
    /// took a lock of the reader's memory arena, and its cache of free blocks never served.
    func recycle(_ items: consuming [Item]) {
        condition.lock()
        spent.append(items)
        condition.unlock()
    }

    /// Stops the reading thread and waits for it; returns the reader, where the thread left it.
    func stop() -> CSVReader {
        condition.lock()
        stopped = true
        condition.broadcast()
        while !producerDone { condition.wait() }
        condition.unlock()
        return reader
    }
}
