import Foundation
import Logging

/// One HTTP request, free of any networking library's types.
package struct HTTPRequest: Sendable {
    package var method: String
    package var url: URL
    package var headers: [String: String]
    package var body: Data?
    /// Seconds to wait for the answer before giving up with `HTTPTransportError.timedOut`.
    package var timeout: TimeInterval
    /// Send on a new connection that is not reused: for writes that must not happen twice, which
    /// a transport must never re-send on its own.
    package var freshConnection: Bool
    /// The most bytes of answer the transport takes, after any decompression: a transport stops
    /// reading at once with `HTTPTransportError.answerTooLarge` when an answer declares or sends
    /// more, so that a broken or hostile server cannot fill the machine's memory.
    package var maximumBodyBytes: Int

    /// The bound of a page of contacts, companies or search results, and of every answer the
    /// engine does not bound more tightly.
    ///
    /// A page holds at most 150 records. A contact as Intercom sends it is 2 to 4 KB, and one
    /// that carries a workspace's whole allowance of custom attributes (a few hundred, each value
    /// at most 255 characters) stays under 100 KB: a page of such contacts is about 15 MB. Half
    /// as much again leaves room for what Intercom adds, and keeps a hostile answer to 24 MB.
    package static let maximumPageBytes = 24 << 20
    /// The bound of an answer that is one small object (`/me`, an OAuth token, one contact).
    package static let maximumObjectBytes = 1 << 20

    package init(
        method: String, url: URL, headers: [String: String] = [:], body: Data? = nil, timeout: TimeInterval = 30,
        freshConnection: Bool = false, maximumBodyBytes: Int = HTTPRequest.maximumPageBytes
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.freshConnection = freshConnection
        self.maximumBodyBytes = maximumBodyBytes
    }
}

/// One HTTP answer. Header names are lower-cased.
package struct HTTPResponse: Sendable {
    package var status: Int
    package var headers: [String: String]
    package var body: Data

    package init(status: Int, headers: [String: String] = [:], body: Data = Data()) {
        self.status = status
        self.headers = headers.reduce(into: [:]) { $0[$1.key.lowercased()] = $1.value }
        self.body = body
    }

    package func header(_ name: String) -> String? {
        headers[name.lowercased()]
    }
}

/// Why a request got no HTTP answer at all.
package enum HTTPTransportError: Error, Sendable, Equatable {
    /// No answer within the request's timeout: the request may or may not have been processed.
    case timedOut
    /// The host could not be reached: the request was not sent.
    case unreachable(String)
    /// The connection failed part-way: the request may or may not have been processed.
    case connectionLost(String)
    /// The answer declared (`Content-Length`) or sent more than the request's
    /// `maximumBodyBytes`, or headers beyond `maximumHeaderBytes`: reading stopped there.
    /// `declared` is the length the server announced, when it announced one.
    case answerTooLarge(limit: Int, declared: Int?)
    /// The answers being received at once went past `limit` bytes together: each under its
    /// own bound, but more than a pull's pages ever hold.
    case answersInFlightTooLarge(limit: Int)

    /// The bytes a transport's answers may hold together while they are received. Pages of
    /// Intercom's contacts are rarely above a megabyte, so 64 at once stay under it; a body
    /// that grows as it arrives may hold up to twice its bytes, so the process stays under
    /// 300 MB whatever a server sends.
    package static let maximumBytesInFlight = 96 << 20

    /// The most bytes of headers an answer may carry; Intercom sends about one kilobyte.
    package static let maximumHeaderBytes = 256 << 10
}

/// The seam between the client and the network: the default is `defaultHTTPTransport`; tests
/// and embedders can plug in another.
package protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}

/// The transport a client uses when it is given none: `CurlTransport` on Linux, URLSession on
/// Apple's platforms, each with at most `maximumConnectionsPerHost` connections to a host.
package func defaultHTTPTransport(timeout: TimeInterval, maximumConnectionsPerHost: Int = 6) -> any HTTPTransport {
    #if canImport(Darwin)
        URLSessionTransport(timeout: timeout, maximumConnectionsPerHost: maximumConnectionsPerHost)
    #else
        CurlTransport(timeout: timeout, maximumConnectionsPerHost: maximumConnectionsPerHost)
    #endif
}

/// The default transport, logging each exchange to `logger` when there is one
/// (`LoggingTransport`): what the public API builds from an app's settings.
package func defaultHTTPTransport(
    timeout: TimeInterval, maximumConnectionsPerHost: Int = 6, logger: Logger?
) -> any HTTPTransport {
    let transport = defaultHTTPTransport(timeout: timeout, maximumConnectionsPerHost: maximumConnectionsPerHost)
    guard let logger else { return transport }
    return LoggingTransport(wrapping: transport, logger: logger)
}
