/// The character encoding of a CSV file. Imports read UTF-8; a file saved as Windows-1252 (what
/// Excel on Windows and many older CRMs write, and a superset of Latin-1's printable
/// characters) is converted to UTF-8 as it is read.
public enum CSVEncoding: String, Sendable, Equatable, CaseIterable {
    case utf8 = "utf-8"
    case windows1252 = "windows-1252"

    /// The encoding a name stands for, as people write it: `utf8`, `UTF-8`, `latin1`,
    /// `iso-8859-1`, `cp1252`, `windows-1252`. Latin-1 is read as Windows-1252, as browsers
    /// do: the two differ only in 0x80-0x9F, control codes in Latin-1 that no CSV holds.
    public init?(name: String) {
        switch name.lowercased().filter({ $0.isLetter || $0.isNumber }) {
        case "utf8": self = .utf8
        case "windows1252", "cp1252", "latin1", "iso88591", "l1": self = .windows1252
        default: return nil
        }
    }
}

extension CSVReader {
    /// `source` read as Windows-1252 and handed on as UTF-8.
    static func decodingWindows1252(_ source: @escaping Source) -> Source {
        let decoder = Windows1252Decoder(source)
        return { buffer in try decoder.fill(buffer) }
    }
}

/// Turns Windows-1252 bytes into UTF-8, a chunk at a time.
private final class Windows1252Decoder {
    private let source: CSVReader.Source
    private var input = [UInt8](repeating: 0, count: 1 << 15)
    private var output: [UInt8] = []
    private var offset = 0

    init(_ source: @escaping CSVReader.Source) {
        self.source = source
    }

    func fill(_ buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if offset == output.count {
            output.removeAll(keepingCapacity: true)
            offset = 0
            let count = try input.withUnsafeMutableBytes { try source($0) }
            guard count > 0 else { return 0 }
            for byte in input[..<count] { append(byte) }
        }
        let count = min(buffer.count, output.count - offset)
        output.withUnsafeBytes { bytes in
            buffer.baseAddress!.copyMemory(from: bytes.baseAddress! + offset, byteCount: count)
        }
        offset += count
        return count
    }

    private func append(_ byte: UInt8) {
        guard byte >= 0x80 else {
            output.append(byte)
            return
        }
        let scalar = byte < 0xA0 ? Self.high[Int(byte - 0x80)] : UInt32(byte)
        if scalar < 0x800 {
            output.append(UInt8(0xC0 | (scalar >> 6)))
        } else {
            output.append(UInt8(0xE0 | (scalar >> 12)))
            output.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
        }
        output.append(UInt8(0x80 | (scalar & 0x3F)))
    }

    /// Windows-1252's characters at 0x80-0x9F; its five unassigned bytes keep their Latin-1
    /// control code.
    private static let high: [UInt32] = [
        0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D,
        0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A,
        0x0153, 0x009D, 0x017E, 0x0178,
    ]
}
