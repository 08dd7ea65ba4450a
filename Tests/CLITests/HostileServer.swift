import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A server on 127.0.0.1 that answers with raw bytes a framework would not let it send: a body
/// longer than any memory, a `Content-Length` that lies, a stream without end, a small gzip body
/// that unpacks to hundreds of megabytes. Each connection gets a thread; each request the answer
/// its path chooses. Writing stops when the client hangs up.
final class HostileServer: @unchecked Sendable {
    enum Answer: Sendable {
        /// A well-formed JSON answer.
        case json(String)
        /// Declares `declared` bytes and sends zeros until the client hangs up.
        case declaring(declared: Int)
        /// A chunked body of zeros that never ends.
        case endless
        /// `size` bytes of a JSON string, declared honestly.
        case large(size: Int)
        /// A gzip body of the given compressed bytes, declared honestly.
        case gzip(Data)
    }

    let port: Int
    private let listener: Int32
    private let choose: @Sendable (_ path: String) -> Answer
    private let lock = NSLock()
    private var paths: [String] = []
    private var stopped = false

    var baseURL: String { "http://127.0.0.1:\(port)" }
    var requests: [String] { lock.withLock { paths } }

    init(_ choose: @escaping @Sendable (_ path: String) -> Answer) throws {
        let server = try SilentServer.listening()
        listener = server.descriptor
        port = server.port
        self.choose = choose
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    func stop() {
        lock.withLock { stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func acceptLoop() {
        while !isStopped {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            Thread { [self] in serve(connection) }.start()
        }
    }

    private func serve(_ connection: Int32) {
        defer { close(connection) }
        var pending = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 16384)
        while !isStopped {
            // One request's head; the engine's GETs carry no body, and a POST's is skipped.
            guard let end = pending.firstRange(of: Array("\r\n\r\n".utf8)) else {
                let count = recv(connection, &buffer, buffer.count, 0)
                guard count > 0 else { return }
                pending.append(contentsOf: buffer[..<count])
                continue
            }
            let head = String(decoding: pending[..<end.lowerBound], as: UTF8.self)
            pending.removeSubrange(..<end.upperBound)
            let length =
                head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            while pending.count < length {
                let count = recv(connection, &buffer, buffer.count, 0)
                guard count > 0 else { return }
                pending.append(contentsOf: buffer[..<count])
            }
            pending.removeFirst(length)
            let target = head.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
            let path = String(target.prefix { $0 != "?" })
            lock.withLock { paths.append(path) }
            guard answer(choose(path), on: connection) else { return }
        }
    }

    /// Writes the answer; false when the connection is done with.
    private func answer(_ answer: Answer, on connection: Int32) -> Bool {
        let zeros = [UInt8](repeating: 0x30, count: 65536)
        switch answer {
        case .json(let text):
            let body = Array(text.utf8)
            return send(head(["Content-Type: application/json", "Content-Length: \(body.count)"]), connection)
                && send(body, connection)
        case .declaring(let declared):
            guard send(head(["Content-Type: application/json", "Content-Length: \(declared)"]), connection) else {
                return false
            }
            while send(zeros, connection) {}
            return false
        case .endless:
            guard send(head(["Content-Type: application/json", "Transfer-Encoding: chunked"]), connection) else {
                return false
            }
            let chunk = Array("10000\r\n".utf8) + zeros + Array("\r\n".utf8)
            while send(chunk, connection) {}
            return false
        case .large(let size):
            guard send(head(["Content-Type: application/json", "Content-Length: \(size)"]), connection),
                send(Array("\"".utf8), connection)
            else { return false }
            var left = size - 2
            while left > 0 {
                guard send(Array(zeros.prefix(left)), connection) else { return false }
                left -= min(left, zeros.count)
            }
            return send(Array("\"".utf8), connection)
        case .gzip(let body):
            return send(
                head(["Content-Type: application/json", "Content-Encoding: gzip", "Content-Length: \(body.count)"]),
                connection) && send(Array(body), connection)
        }
    }

    private func head(_ lines: [String]) -> [UInt8] {
        Array((["HTTP/1.1 200 OK"] + lines).joined(separator: "\r\n").utf8) + Array("\r\n\r\n".utf8)
    }

    private func send(_ bytes: [UInt8], _ connection: Int32) -> Bool {
        var sent = 0
        while sent < bytes.count {
            #if canImport(Glibc)
                let count = bytes[sent...].withUnsafeBytes {
                    Glibc.send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                }
            #else
                let count = bytes[sent...].withUnsafeBytes { Darwin.send(connection, $0.baseAddress, $0.count, 0) }
            #endif
            guard count > 0 else { return false }
            sent += count
        }
        return true
    }

    /// A gzip stream of `megabytes` MB of the letter "0", built by hand: one deflate block of
    /// fixed Huffman codes, a literal "0" and then back-references of 258 bytes at distance 1,
    /// 13 bits each. About 1.3 MB unpacks to 200 MB. It is cut short of its end (no final code,
    /// no checksum): a reader that stops at its bound never gets there.
    static func gzipBomb(megabytes: Int) -> Data {
        var bytes: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]
        var accumulator: UInt64 = 0
        var filled = 0
        func put(_ value: UInt64, _ count: Int) {
            accumulator |= value << UInt64(filled)
            filled += count
            while filled >= 8 {
                bytes.append(UInt8(accumulator & 0xff))
                accumulator >>= 8
                filled -= 8
            }
        }
        /// A Huffman code goes out most significant bit first.
        func code(_ value: UInt64, _ count: Int) {
            var reversed: UInt64 = 0
            for bit in 0..<count where value & (1 << UInt64(bit)) != 0 { reversed |= 1 << UInt64(count - 1 - bit) }
            put(reversed, count)
        }
        put(0, 1)  // Not the final block.
        put(1, 2)  // Fixed Huffman codes.
        code(0x30 + 0x30, 8)  // The literal "0" (0x30): codes 0-143 are 0x30 + the byte.
        for _ in 0..<(megabytes << 20) / 258 {
            code(0xC5, 8)  // Length 258: code 285.
            code(0, 5)  // Distance 1: distance code 0.
        }
        return Data(bytes)
    }
}
