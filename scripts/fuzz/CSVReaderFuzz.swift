// libFuzzer target for CSVReader, compiled with the reader's source alone by scripts/fuzz-csv.
// Beyond "no crash, no hang": a row never exceeds the limit, line numbers never go back, and
// reading in 16-byte chunks gives exactly what reading in one chunk gives (a file refused
// whole, as UTF-16 is, must be refused either way).

/// The rows, or the description of the error a whole file is refused with (UTF-16).
func rows(_ bytes: [UInt8], chunkSize: Int) -> [CSVRow] {
    do {
        return try readRows(bytes, chunkSize: chunkSize)
    } catch {
        return [.malformed(line: 0, reason: "\(error)", text: "")]
    }
}

func readRows(_ bytes: [UInt8], chunkSize: Int) throws -> [CSVRow] {
    var offset = 0
    var reader = CSVReader(maximumRowBytes: 4096, chunkSize: chunkSize) { buffer in
        let count = min(buffer.count, bytes.count - offset)
        for index in 0..<count { buffer[index] = bytes[offset + index] }
        offset += count
        return count
    }
    var rows: [CSVRow] = []
    while let row = try reader.next() {
        rows.append(row)
        precondition(reader.bytesRead <= bytes.count, "read past the end")
    }
    precondition(reader.bytesRead == bytes.count, "stopped before the end")
    return rows
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let whole = rows(bytes, chunkSize: 1 << 16)
    var lastLine = 0
    for row in whole where row.line > 0 {
        precondition(row.line > lastLine, "line numbers must grow")
        lastLine = row.line
        if case .record(_, let fields) = row {
            precondition(fields.reduce(0) { $0 + $1.utf8.count } <= 4096, "a row over the limit")
        }
    }
    precondition(rows(bytes, chunkSize: 16) == whole, "chunk boundaries changed the rows")
    return 0
}
