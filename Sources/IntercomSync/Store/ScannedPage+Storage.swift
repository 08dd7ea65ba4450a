import Foundation

extension ScannedPage {
    /// Compresses every body with `compressor` ahead of the writer, which takes them as they are
    /// if it still writes with that compressor (and compresses them again otherwise): the
    /// compression then runs where the page was read, beside the writer rather than on it.
    mutating func pack(with compressor: BodyCompressor) {
        for index in contacts.indices {
            let bytes = try? compressor.pack(contacts[index].body) { [UInt8]($0) }
            contacts[index].packed = bytes.map { (compressor, $0) }
        }
    }
}

extension ScannedContact {
    /// Binds ?1…?13 of the upsert statement: `columnValues`, the body compressed, then the fetch
    /// time.
    func bind(to statement: RawBinding, fetchedAt: Int, compressor: BodyCompressor) throws {
        for (index, value) in columnValues.enumerated() {
            let position = Int32(index + 1)
            switch value {
            case .null: break
            case .int(let number): statement.bind(position, number)
            case .double(let number): statement.bind(position, number)
            case .text(let text): statement.bind(position, text)
            }
        }
        if let packed, packed.compressor === compressor as AnyObject {
            packed.bytes.withUnsafeBytes { statement.bind(12, blob: $0) }
        } else {
            try compressor.pack(body) { statement.bind(12, blob: $0) }
        }
        statement.bind(13, Int64(fetchedAt))
    }
}

/// Pages taken apart on every core, each waited for in turn by the writer (`upsertPages`).
final class ScannedPages: @unchecked Sendable {
    private let condition = NSCondition()
    private var results: [Result<ScannedPage, any Error>?]

    /// `compressor`, when given, compresses the bodies as the pages are read.
    init(_ pages: [String], compressor: BodyCompressor? = nil) {
        results = Array(repeating: nil, count: pages.count)
        DispatchQueue.global().async { [self] in
            DispatchQueue.concurrentPerform(iterations: pages.count) { index in
                let result = Result {
                    var page = try ScannedPage(pages[index])
                    if let compressor { page.pack(with: compressor) }
                    return page
                }
                condition.lock()
                results[index] = result
                condition.broadcast()
                condition.unlock()
            }
        }
    }

    /// Page `index`, once it is read; throws what reading it threw.
    func page(_ index: Int) throws -> ScannedPage {
        condition.lock()
        defer { condition.unlock() }
        while results[index] == nil { condition.wait() }
        return try results[index]!.get()
    }
}
