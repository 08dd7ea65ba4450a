import Foundation
import Logging

/// Wraps a transport and logs each exchange (`--verbose`): method, URL, status and time at
/// `.info`; the headers too at `.debug`, with `Authorization` shown only as the token's
/// fingerprint. The token itself is never logged, nor are request or answer bodies.
package struct LoggingTransport: HTTPTransport {
    let wrapped: any HTTPTransport
    let logger: Logger

    package init(wrapping wrapped: any HTTPTransport, logger: Logger) {
        self.wrapped = wrapped
        self.logger = logger
    }

    package func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let started = ContinuousClock.now
        let target = "\(request.method) \(request.url.absoluteString)"
        logger.debug("→ \(target) \(Self.redacted(request.headers))")
        do {
            let response = try await wrapped.send(request)
            let milliseconds = (ContinuousClock.now - started).milliseconds
            logger.info("\(target) → \(response.status) in \(milliseconds) ms, \(response.body.count) bytes")
            let limits = ["x-ratelimit-remaining", "x-ratelimit-reset", "x-request-id", "etag"]
                .compactMap { name in response.header(name).map { "\(name): \($0)" } }
            logger.debug("← \(limits.joined(separator: ", "))")
            return response
        } catch {
            logger.info("\(target) → no answer after \((ContinuousClock.now - started).milliseconds) ms (\(error))")
            throw error
        }
    }

    static func redacted(_ headers: [String: String]) -> String {
        headers.sorted { $0.key < $1.key }.map { name, value in
            guard name.lowercased() == "authorization" else { return "\(name): \(value)" }
            let token = value.hasPrefix("Bearer ") ? String(value.dropFirst(7)) : value
            return "\(name): Bearer <\(SHA256.fingerprint(of: token))>"
        }.joined(separator: ", ")
    }
}

extension Duration {
    /// Whole milliseconds, for logs and progress lines.
    package var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
