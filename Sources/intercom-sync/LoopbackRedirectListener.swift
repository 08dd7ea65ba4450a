import Foundation
import IntercomSync

/// A one-shot HTTP listener on 127.0.0.1 that catches the OAuth redirect (`auth login --listen`).
///
/// It binds when created, so the port is known before the authorize URL is printed, answers
/// the first request that carries `code` or `error` with a page saying the browser can be
/// closed, and stops. Other requests (a browser's favicon) get a 404. It never listens on any
/// address but loopback.
final class LoopbackRedirectListener: Sendable {
    let port: Int
    private let socket: Int32

    /// Binds 127.0.0.1:`port` (0 picks a free port).
    init(port: Int) throws {
        let descriptor = Foundation.socket(AF_INET, Self.streamSocket, 0)
        guard descriptor >= 0 else { throw Self.failure("cannot open a socket") }
        var yes: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(descriptor, 4) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw Self.failure("cannot listen on 127.0.0.1:\(port) (\(reason)); pick another port with --listen")
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.port = Int(UInt16(bigEndian: actual.sin_port))
        socket = descriptor
    }

    deinit {
        close(socket)
    }

    /// A TCP socket's type, as `socket(2)` takes it (an enum in Glibc).
    static var streamSocket: Int32 {
        #if canImport(Glibc)
            Int32(SOCK_STREAM.rawValue)
        #else
            SOCK_STREAM
        #endif
    }

    /// 127.0.0.1 at `port`, as `bind(2)` and `connect(2)` take it.
    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// The redirect URI to register and pass to the authorize URL.
    var redirectURI: String { "http://127.0.0.1:\(port)/callback" }

    /// Waits for the redirect and returns its full URL.
    func waitForRedirect(timeout: TimeInterval) async throws -> String {
        let socket = socket
        let port = port
        return try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result { try Self.accept(on: socket, port: port, timeout: timeout) })
            }.start()
        }
    }

    private static func accept(on socket: Int32, port: Int, timeout: TimeInterval) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else {
                throw failure("no redirect reached 127.0.0.1:\(port) within \(Int(timeout)) s; nothing was stored")
            }
            var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(min(remaining, 1) * 1000)) > 0 else { continue }
            let connection = Foundation.accept(socket, nil, nil)
            guard connection >= 0 else { continue }
            defer { close(connection) }
            var timeLimit = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeLimit, socklen_t(MemoryLayout<timeval>.size))
            var request: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while request.count < 16_384, !request.containsHeaderEnd {
                let count = read(connection, &buffer, buffer.count)
                guard count > 0 else { break }
                request += buffer[0..<count]
            }
            let firstLine = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
            let parts = firstLine.split(separator: " ")
            let target = parts.count >= 2 ? String(parts[1]) : "/"
            let isRedirect = parts.first == "GET" && (target.contains("code=") || target.contains("error="))
            let page =
                isRedirect
                ? "<!doctype html><title>intercom-sync</title><p>intercom-sync received the answer. You can close this window."
                : "<!doctype html><title>Not found</title><p>Not found."
            let status = isRedirect ? "200 OK" : "404 Not Found"
            let answer =
                "HTTP/1.1 \(status)\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: \(page.utf8.count)\r\n"
                + "Connection: close\r\n\r\n\(page)"
            _ = answer.withCString { write(connection, $0, strlen($0)) }
            if isRedirect { return "http://127.0.0.1:\(port)\(target)" }
        }
    }

    private static func failure(_ message: String) -> AuthError {
        AuthError(.listenerFailed, message)
    }
}

extension [UInt8] {
    /// Whether the bytes hold the blank line that ends HTTP headers.
    var containsHeaderEnd: Bool {
        count >= 4
            && indices.dropLast(3).contains { self[$0] == 13 && self[$0 + 1] == 10 && self[$0 + 2] == 13 && self[$0 + 3] == 10 }
    }
}
