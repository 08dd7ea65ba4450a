import Foundation

/// The browser of the demo's OAuth login: a plain HTTP/1.1 `GET` to a loopback address, read
/// until the server closes or the headers end, without following redirects. It knows only what
/// the login needs (the status and the `Location` header) and refuses any address but
/// 127.0.0.1, as the demo talks to nothing else. Its blocking calls run on a thread of their
/// own, never on the cooperative pool the in-process simulator answers from.
enum DemoBrowser {
    struct Answer {
        var status: Int
        var location: String?
    }

    static func get(_ url: URL, timeout: TimeInterval = 10) async throws -> Answer {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try blockingGet(url, timeout: timeout) }) }.start()
        }
    }

    private static func blockingGet(_ url: URL, timeout: TimeInterval) throws -> Answer {
        guard url.scheme == "http", url.host == "127.0.0.1", let port = url.port else {
            throw CommandFailure("the demo's browser opens only http://127.0.0.1:PORT, not \(url.absoluteString)")
        }
        let descriptor = socket(AF_INET, LoopbackRedirectListener.streamSocket, 0)
        guard descriptor >= 0 else { throw CommandFailure("cannot open a socket") }
        defer { close(descriptor) }
        var timeLimit = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeLimit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeLimit, socklen_t(MemoryLayout<timeval>.size))
        var address = LoopbackRedirectListener.loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            throw CommandFailure("cannot reach 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
        var target = url.path.isEmpty ? "/" : url.path
        if let query = url.query { target += "?" + query }
        let request = "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n\r\n"
        guard request.withCString({ write(descriptor, $0, strlen($0)) }) == request.utf8.count else {
            throw CommandFailure("cannot send to 127.0.0.1:\(port): \(String(cString: strerror(errno)))")
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while answer.count < 65_536, !answer.containsHeaderEnd {
            let count = read(descriptor, &buffer, buffer.count)
            guard count > 0 else { break }
            answer += buffer[0..<count]
        }
        let head = String(decoding: answer, as: UTF8.self).components(separatedBy: "\r\n\r\n")[0]
        let lines = head.components(separatedBy: "\r\n")
        let statusWords = lines[0].split(separator: " ")
        guard statusWords.count >= 2, statusWords[0].hasPrefix("HTTP/"), let status = Int(statusWords[1]) else {
            throw CommandFailure("127.0.0.1:\(port) did not answer HTTP (\(lines[0].prefix(80)))")
        }
        let location = lines.dropFirst().first { $0.lowercased().hasPrefix("location:") }
            .map { $0.dropFirst("location:".count).trimmingCharacters(in: .whitespaces) }
        return Answer(status: status, location: location)
    }
}
