import Foundation
import GRDBSQLite

/// `contact_matches(words, name, email, phone)`: whether a contact matches a search, decided from
/// the row's own text, exactly as the full-text index would decide it.
///
/// A search sorted by `updated_at` that matches a large share of the mirror walks the
/// `updated_at` index and keeps the rows that match. Asking the full-text index about each row
/// costs tens of microseconds, and gathering every match first costs a pass over all of them; the
/// row's text answers in about a microsecond. It is split into tokens by FTS5's own `unicode61`
/// tokenizer with the full-text table's settings, so the tokens are the ones the index holds.
///
/// `words` is the search's words separated by spaces. Like the FTS5 expression `"w1"* "w2"*`,
/// every word must match one of the name, email or phone: its tokens in a row, the last one as a
/// prefix. A word with no tokens is ignored, and a search with no tokens at all matches nothing.
enum SearchMatch {
    /// The tokenizer's arguments: those of the mirror's full-text table.
    static let tokenizerArguments = ["remove_diacritics", "2"]

    /// Registers the function on a connection, with a tokenizer of its own, freed with it.
    static func register(on connection: OpaquePointer) {
        guard let tokenizer = Tokenizer(connection: connection) else { return }
        sqlite3_create_function_v2(
            connection, "contact_matches", 4, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
            Unmanaged.passRetained(tokenizer).toOpaque(), contactMatches, nil, nil,
            { tokenizer in tokenizer.map { Unmanaged<Tokenizer>.fromOpaque($0).release() } })
    }

    private static let contactMatches: @convention(c) (OpaquePointer?, Int32, UnsafeMutablePointer<OpaquePointer?>?) -> Void = {
        context, _, arguments in
        guard let context, let arguments, let data = sqlite3_user_data(context) else { return }
        let tokenizer = Unmanaged<Tokenizer>.fromOpaque(data).takeUnretainedValue()
        let search: Search
        if let cached = sqlite3_get_auxdata(context, 0) {
            search = Unmanaged<Search>.fromOpaque(cached).takeUnretainedValue()
        } else {
            search = Search(words: text(arguments[0]), tokenizer: tokenizer)
            sqlite3_set_auxdata(
                context, 0, Unmanaged.passRetained(search).toOpaque(),
                { search in search.map { Unmanaged<Search>.fromOpaque($0).release() } })
        }
        var found = search.words.map { _ in false }
        for column in 1...3 {
            tokenizer.tokenize(text(arguments[column]))
            for (index, word) in search.words.enumerated() where !found[index] {
                found[index] = tokenizer.contains(word)
            }
        }
        sqlite3_result_int(context, !search.words.isEmpty && !found.contains(false) ? 1 : 0)
    }

    private static func text(_ value: OpaquePointer?) -> UnsafeRawBufferPointer {
        guard let value, let bytes = sqlite3_value_text(value) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: bytes, count: Int(sqlite3_value_bytes(value)))
    }

    /// A search's words, each as its tokens (the words with none left out).
    final class Search {
        let words: [[[UInt8]]]

        init(words text: UnsafeRawBufferPointer, tokenizer: Tokenizer) {
            words = text.split(separator: UInt8(ascii: " ")).compactMap { word in
                tokenizer.tokenize(UnsafeRawBufferPointer(rebasing: word))
                let tokens = tokenizer.tokens
                return tokens.isEmpty ? nil : tokens
            }
        }
    }

    /// One connection's `unicode61` tokenizer, and the tokens of the last text it split.
    final class Tokenizer {
        private let methods: fts5_tokenizer
        private let instance: OpaquePointer
        /// The last text's tokens, end to end, and where each ends.
        private var bytes: [UInt8] = []
        private var ends: [Int] = []

        init?(connection: OpaquePointer) {
            var api: UnsafeMutablePointer<fts5_api>?
            var statement: OpaquePointer?
            guard sqlite3_prepare_v2(connection, "SELECT fts5(?1)", -1, &statement, nil) == SQLITE_OK else { return nil }
            withUnsafeMutablePointer(to: &api) { pointer in
                _ = sqlite3_bind_pointer(statement, 1, pointer, "fts5_api_ptr", nil)
                _ = sqlite3_step(statement)
            }
            sqlite3_finalize(statement)
            var methods = fts5_tokenizer()
            var context: UnsafeMutableRawPointer?
            guard let api, let find = api.pointee.xFindTokenizer,
                find(api, "unicode61", &context, &methods) == SQLITE_OK, let create = methods.xCreate
            else { return nil }
            var instance: OpaquePointer?
            let arguments = SearchMatch.tokenizerArguments.map { strdup($0) }
            defer { arguments.forEach { free($0) } }
            var pointers = arguments.map { UnsafePointer<CChar>($0) }
            let code = pointers.withUnsafeMutableBufferPointer { buffer in
                create(context, buffer.baseAddress, Int32(buffer.count), &instance)
            }
            guard code == SQLITE_OK, let instance else { return nil }
            self.methods = methods
            self.instance = instance
        }

        deinit {
            methods.xDelete?(instance)
        }

        /// The tokens of the last text split.
        var tokens: [[UInt8]] {
            ends.indices.map { index in Array(bytes[(index == 0 ? 0 : ends[index - 1])..<ends[index]]) }
        }

        /// Splits `text` into tokens, kept until the next call.
        func tokenize(_ text: UnsafeRawBufferPointer) {
            bytes.removeAll(keepingCapacity: true)
            ends.removeAll(keepingCapacity: true)
            guard let start = text.baseAddress, !text.isEmpty else { return }
            _ = methods.xTokenize?(
                instance, Unmanaged.passUnretained(self).toOpaque(), FTS5_TOKENIZE_DOCUMENT,
                start.assumingMemoryBound(to: CChar.self), Int32(text.count)
            ) { context, _, token, length, _, _ in
                guard let context, let token else { return SQLITE_OK }
                let tokenizer = Unmanaged<Tokenizer>.fromOpaque(context).takeUnretainedValue()
                tokenizer.bytes.append(
                    contentsOf: UnsafeRawBufferPointer(start: token, count: Int(length)))
                tokenizer.ends.append(tokenizer.bytes.count)
                return SQLITE_OK
            }
        }

        /// Whether the last text holds `word`'s tokens in a row, the last as a prefix.
        func contains(_ word: [[UInt8]]) -> Bool {
            guard word.count <= ends.count else { return false }
            return bytes.withUnsafeBufferPointer { bytes in
                func token(_ index: Int) -> UnsafeBufferPointer<UInt8> {
                    let start = index == 0 ? 0 : ends[index - 1]
                    return UnsafeBufferPointer(rebasing: bytes[start..<ends[index]])
                }
                for first in 0...(ends.count - word.count) {
                    var matched = true
                    for (offset, part) in word.enumerated() {
                        let candidate = token(first + offset)
                        let isLast = offset == word.count - 1
                        if isLast ? !candidate.starts(with: part) : !candidate.elementsEqual(part) {
                            matched = false
                            break
                        }
                    }
                    if matched { return true }
                }
                return false
            }
        }
    }
}
