import CZstd
import Foundation

/// How the mirror stores contact bodies: compressed with zstd, with a dictionary trained from
/// the workspace's own contacts. A body of about 1.2 KB becomes about 150 bytes: Intercom's bodies
/// repeat the same keys, types and urls, which the dictionary holds once.
///
/// A stored body is a blob: the id of the dictionary it was written with, as a LEB128 varint
/// (0: no dictionary), then one zstd frame that records its content size, without a checksum
/// (SQLite keeps no checksums either) or zstd's own dictionary id (the prefix says it). A body
/// stored as text (a contact created here, or a mirror from before compression) is the JSON itself.
/// SQL reads either through `contact_body(body)` (`BodyFunctions`).
enum BodyCompression {
    /// zstd's level. Levels 1 to 3 differ little with a dictionary on such small inputs; 3 is zstd's
    /// default and still a few microseconds a body.
    static let level: Int32 = 3
    /// The most bytes a trained dictionary holds.
    static let dictionaryCapacity = 32 * 1024
    /// How many bodies a dictionary is trained from, at most.
    static let trainingSamples = 2000
    /// How many bodies compressed without a dictionary wait before the first one is trained.
    static let firstTrainingAfter = 1000

    /// Trains a dictionary from `samples`, or nil when zstd cannot (too few or too alike).
    static func trainDictionary(from samples: [String], capacity: Int = dictionaryCapacity) -> [UInt8]? {
        var joined: [UInt8] = []
        var sizes: [Int] = []
        for sample in samples {
            joined.append(contentsOf: sample.utf8)
            sizes.append(sample.utf8.count)
        }
        guard sizes.count >= 8 else { return nil }
        var dictionary = [UInt8](repeating: 0, count: capacity)
        let size = dictionary.withUnsafeMutableBytes { target in
            joined.withUnsafeBytes { source in
                ZDICT_trainFromBuffer(
                    target.baseAddress, capacity, source.baseAddress, sizes, UInt32(sizes.count))
            }
        }
        guard ZDICT_isError(size) == 0 else { return nil }
        return Array(dictionary.prefix(size))
    }

    /// Appends `value` as a LEB128 varint.
    static func writeVarint(_ value: Int64, to pointer: UnsafeMutableRawPointer) -> Int {
        var value = UInt64(bitPattern: value)
        var count = 0
        repeat {
            var byte = UInt8(value & 0x7F)
            value >>= 7
            if value != 0 { byte |= 0x80 }
            pointer.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
            count += 1
        } while value != 0
        return count
    }

    /// Reads the varint at the start of `bytes`: its value and length, or nil if it is cut short.
    static func readVarint(_ bytes: UnsafeRawBufferPointer) -> (value: Int64, length: Int)? {
        var value: UInt64 = 0
        for index in 0..<min(bytes.count, 10) {
            let byte = bytes[index]
            value |= UInt64(byte & 0x7F) << (7 * UInt64(index))
            if byte & 0x80 == 0 { return (Int64(bitPattern: value), index + 1) }
        }
        return nil
    }
}

/// Compresses bodies with one dictionary (or none), from any thread: each call borrows one of a
/// few zstd contexts. It also tallies what it compressed, so that the writer can tell when the
/// workspace's bodies have drifted from the dictionary.
final class BodyCompressor: @unchecked Sendable {
    /// The dictionary's id in the mirror; 0 for none.
    let dictionaryID: Int64
    /// The bytes a body took on average, over the bytes it had, when the dictionary was trained.
    let trainedRatio: Double
    private let dictionary: OpaquePointer?
    private let lock = NSLock()
    /// Guarded by `lock`, like the tallies.
    private var idle: [Scratch] = []
    private var rawBytes = 0
    private var packedBytes = 0
    private var packed = 0

    /// A compressor without a dictionary.
    static let plain = BodyCompressor()

    private init() {
        dictionaryID = 0
        trainedRatio = 1
        dictionary = nil
    }

    /// A compressor for a trained dictionary; nil if zstd refuses its bytes.
    init?(dictionaryID: Int64, bytes: [UInt8], trainedRatio: Double) {
        let prepared = bytes.withUnsafeBytes { ZSTD_createCDict($0.baseAddress, $0.count, BodyCompression.level) }
        guard let prepared else { return nil }
        self.dictionaryID = dictionaryID
        self.trainedRatio = trainedRatio
        dictionary = prepared
    }

    deinit {
        for scratch in idle { scratch.release() }
        if let dictionary { ZSTD_freeCDict(dictionary) }
    }

    /// Compresses `text` and hands its stored form (`BodyCompression`) to `use`; the bytes are
    /// valid only during the call.
    func pack<T>(_ text: UnsafeBufferPointer<UInt8>, _ use: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        let scratch = lock.withLock { idle.popLast() } ?? Scratch(dictionary: dictionary)
        defer { lock.withLock { idle.append(scratch) } }
        let prefix = BodyCompression.writeVarint(dictionaryID, to: scratch.reserve(ZSTD_compressBound(text.count) + 10))
        let size = ZSTD_compress2(
            scratch.context, scratch.buffer + prefix, scratch.capacity - prefix, text.baseAddress, text.count)
        guard ZSTD_isError(size) == 0 else {
            throw MirrorError(.corrupt, detail: "a body could not be compressed: \(String(cString: ZSTD_getErrorName(size)))")
        }
        lock.withLock {
            rawBytes += text.count
            packedBytes += prefix + size
            packed += 1
        }
        return try use(UnsafeRawBufferPointer(start: scratch.buffer, count: prefix + size))
    }

    /// Starts the tally again.
    func resetTally() {
        lock.withLock { (rawBytes, packedBytes, packed) = (0, 0, 0) }
    }

    /// `pack` for a body held as a `String`.
    func pack<T>(_ text: String, _ use: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        var text = text
        return try text.withUTF8 { bytes in try pack(bytes, use) }
    }

    /// Bodies compressed by this value so far, and the ratio of their sizes.
    var tally: (bodies: Int, ratio: Double) {
        lock.withLock { (packed, rawBytes == 0 ? 1 : Double(packedBytes) / Double(rawBytes)) }
    }

    /// A zstd context set up for bodies, and the buffer it writes into.
    private final class Scratch {
        let context: OpaquePointer
        private(set) var buffer: UnsafeMutableRawPointer
        private(set) var capacity = 4096

        init(dictionary: OpaquePointer?) {
            context = ZSTD_createCCtx()
            if let dictionary {
                ZSTD_CCtx_refCDict(context, dictionary)
            } else {
                ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, BodyCompression.level)
            }
            ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 1)
            ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 0)
            ZSTD_CCtx_setParameter(context, ZSTD_c_dictIDFlag, 0)
            buffer = .allocate(byteCount: capacity, alignment: 8)
        }

        /// The buffer, grown to hold at least `count` bytes.
        func reserve(_ count: Int) -> UnsafeMutableRawPointer {
            if count > capacity {
                buffer.deallocate()
                capacity = max(count, capacity * 2)
                buffer = .allocate(byteCount: capacity, alignment: 8)
            }
            return buffer
        }

        func release() {
            ZSTD_freeCCtx(context)
            buffer.deallocate()
        }
    }
}

/// Decompresses bodies written with one dictionary (or none), from any thread.
final class BodyDecompressor: @unchecked Sendable {
    private let dictionary: OpaquePointer?
    private let lock = NSLock()
    private var idle: [OpaquePointer] = []

    static let plain = BodyDecompressor()

    private init() {
        dictionary = nil
    }

    init?(bytes: UnsafeRawBufferPointer) {
        guard let prepared = ZSTD_createDDict(bytes.baseAddress, bytes.count) else { return nil }
        dictionary = prepared
    }

    deinit {
        for context in idle { ZSTD_freeDCtx(context) }
        if let dictionary { ZSTD_freeDDict(dictionary) }
    }

    /// Decompresses one frame into memory from `allocate` (given the content size); returns the
    /// bytes written, or nil if the frame is damaged.
    func unpack(_ frame: UnsafeRawBufferPointer, into allocate: (Int) -> UnsafeMutableRawPointer?)
        -> (pointer: UnsafeMutableRawPointer, count: Int)?
    {
        let declared = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        guard declared < (1 << 31), let target = allocate(Int(declared)) else { return nil }
        let context = lock.withLock { idle.popLast() } ?? ZSTD_createDCtx()!
        defer { lock.withLock { idle.append(context) } }
        let size = ZSTD_decompress_usingDDict(
            context, target, Int(declared), frame.baseAddress, frame.count, dictionary)
        guard ZSTD_isError(size) == 0, size == Int(declared) else { return nil }
        return (target, size)
    }
}

/// The compressors and decompressors of every mirror this process opened, by dictionary token:
/// a random number drawn when the dictionary was trained, so an entry never answers for another
/// mirror's dictionary, or for one whose training was rolled back.
final class BodyCodecs: @unchecked Sendable {
    static let shared = BodyCodecs()

    private let lock = NSLock()
    private var compressors: [Int64: BodyCompressor] = [:]
    private var decompressors: [Int64: BodyDecompressor] = [:]
    /// Dictionaries kept of each kind; a process that opens many mirrors starts over past it.
    private static let capacity = 32

    func compressor(token: Int64, make: () throws -> BodyCompressor?) rethrows -> BodyCompressor? {
        if let found = lock.withLock({ compressors[token] }) { return found }
        guard let made = try make() else { return nil }
        lock.withLock {
            if compressors.count >= Self.capacity { compressors.removeAll() }
            compressors[token] = made
        }
        return made
    }

    func decompressor(token: Int64, make: () -> BodyDecompressor?) -> BodyDecompressor? {
        if let found = lock.withLock({ decompressors[token] }) { return found }
        guard let made = make() else { return nil }
        lock.withLock {
            if decompressors.count >= Self.capacity { decompressors.removeAll() }
            decompressors[token] = made
        }
        return made
    }
}
