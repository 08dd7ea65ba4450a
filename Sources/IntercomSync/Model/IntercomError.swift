import Foundation

/// An Intercom request that did not succeed: Intercom's own `error.list` answer, a network
/// failure, or a reply that could not be read. Carries what a person needs to act on it; never
/// the access token.
public struct IntercomError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure it is. New kinds may come with new versions: a `switch` over it
    /// needs a `default:`, which a new kind does not break.
    public struct Kind: ErrorKind {
        public let name: String

        private init(_ name: String) { self.name = name }

        /// Worth retrying: network failures, timeouts, 5xx, 429, broken replies.
        public static let transient = Kind("transient")
        /// Retrying the same request will not help (4xx other than 401 and 429).
        public static let permanent = Kind("permanent")
        /// The access token was refused: the connection must be set up again.
        public static let authentication = Kind("authentication")
    }

    public var kind: Kind
    /// The HTTP status, or nil when no answer came back.
    public var status: Int?
    /// Intercom's error code (`not_found`, `rate_limit_exceeded`…), or one of ours for failures
    /// without an Intercom answer: `network_unreachable`, `timeout`, `connection_lost`,
    /// `malformed_response`, `response_too_large`.
    public var code: String
    public var message: String
    public var requestID: String?
    /// `"GET /contacts"`: what was asked.
    public var operation: String
    /// The answer's headers (lower-cased names), for `Link` and rate-limit details.
    public var headers: [String: String]

    public init(
        kind: Kind, status: Int?, code: String, message: String, requestID: String? = nil, operation: String,
        headers: [String: String] = [:]
    ) {
        self.kind = kind
        self.status = status
        self.code = code
        self.message = message
        self.requestID = requestID
        self.operation = operation
        self.headers = headers
    }

    /// What would fix it: connecting again for a refused token, checking the base URL for a
    /// server that does not answer as Intercom's API does.
    public var remedy: ErrorRemedy? {
        if kind == .authentication { return .reconnect }
        if isRateLimited { return .tryLater }
        if code == "redirect_refused" || code == "response_too_large"
            || (code == "malformed_response" && operation == "GET /me")
        {
            return .checkBaseURL
        }
        return nil
    }

    /// True when Intercom answered 429 for longer than the request's patience: it asks to be
    /// tried later.
    public var isRateLimited: Bool { status == 429 }

    /// True when the request never reached Intercom: the mirror can answer instead.
    public var isOffline: Bool { code == "network_unreachable" }

    /// True when no answer came back at all: the host was unreachable, the request timed out or
    /// its connection broke. Whether Intercom acted on it is known only for `isOffline`.
    public var isNoAnswer: Bool { status == nil && ["network_unreachable", "timeout", "connection_lost"].contains(code) }

    /// Why an answer was refused for its size: the bound, what the server declared, and that
    /// Intercom never sends such an answer.
    static func tooLargeMessage(limit: Int, declared: Int?, host: String?) -> String {
        let server = host.map { "the server at \($0)" } ?? "the server"
        let bound = limit >= 1 << 20 ? "\(limit >> 20) MB" : "\(limit >> 10) KB"
        let what =
            declared.map { "the answer declared \($0) bytes, more than the \(bound) this request takes" }
            ?? "the answer went past the \(bound) this request takes, and reading stopped there"
        return "\(what); Intercom's answers are far smaller, so \(server) is not answering as Intercom does"
    }

    /// The server's words on one line: its line breaks and other control characters become
    /// spaces, so that an error printed as one line stays one line.
    static func oneLine(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : $0 }))
    }

    /// 401 and the `token_*` codes are authentication; 408, 429 and 5xx transient.
    static func classify(status: Int, code: String) -> Kind {
        if status == 401 || code.hasPrefix("token_") || code == "unauthorized" || code == "missing_authorization" {
            return .authentication
        }
        if status == 408 || status == 429 || status >= 500 {
            return .transient
        }
        return .permanent
    }

    public var description: String {
        var text = "\(operation): "
        if let status { text += "\(status) " }
        text += "\(code): \(message)"
        if let requestID { text += " (request \(requestID))" }
        if kind == .authentication { text += ". Intercom refused the access token" }
        return text
    }
}

/// Reason phrases for answers that carry no Intercom error body.
enum HTTPURLResponseStatus {
    static func text(_ status: Int) -> String {
        switch status {
        case 400: "bad request"
        case 401: "unauthorized"
        case 403: "forbidden"
        case 404: "not found"
        case 409: "conflict"
        case 410: "gone"
        case 429: "too many requests"
        case 500..<600: "server error"
        default: "unexpected HTTP status \(status)"
        }
    }
}
