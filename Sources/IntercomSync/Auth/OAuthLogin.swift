import Foundation
import Logging

/// One OAuth2 authorization-code login: the authorize URL with a fresh random
/// `state`, the check of the redirect that comes back, and the code's exchange for a token.
///
///     let login = OAuthLogin(clientID: id, clientSecret: secret, redirectURI: uri)
///     print(login.authorizeURL)                       // the user approves in a browser
///     let code = try login.code(fromRedirect: pasted)  // refuses a foreign `state`
///     let token = try await login.exchange(code)
///     let credentials = try await Credentials.connect(token: token, method: .oauth)
public struct OAuthLogin: Sendable {
    /// Intercom's authorize page and token endpoint; with an explicit API base URL (a proxy, the
    /// simulator), both live under it.
    public struct Endpoints: Sendable {
        public var authorize: URL
        public var token: URL

        public static let intercom = Endpoints(
            authorize: URL(string: "https://app.intercom.com/oauth")!,
            token: URL(string: "https://api.intercom.io/auth/eagle/token")!)

        public init(authorize: URL, token: URL) {
            self.authorize = authorize
            self.token = token
        }

        public init(apiBase: URL) {
            self.init(
                authorize: apiBase.appendingPathComponent("oauth"),
                token: apiBase.appendingPathComponent("auth/eagle/token"))
        }
    }

    public let clientID: String
    /// Used once, for the exchange; never stored.
    let clientSecret: String
    public let redirectURI: String?
    public let endpoints: Endpoints
    /// 32 random bytes in hex, from the system's secure generator.
    public let state: String
    let timeout: TimeInterval

    public init(
        clientID: String, clientSecret: String, redirectURI: String? = nil, endpoints: Endpoints = .intercom,
        timeout: TimeInterval = 30
    ) {
        self.clientID = clientID
        self.clientSecret = clientSecret
        self.redirectURI = redirectURI
        self.endpoints = endpoints
        self.timeout = timeout
        var generator = SystemRandomNumberGenerator()
        state = (0..<4).map { _ in String(generator.next(), radix: 16).leftPadded(16) }.joined()
    }

    /// Where the user approves the app.
    public var authorizeURL: URL {
        var components = URLComponents(url: endpoints.authorize, resolvingAgainstBaseURL: false)!
        var items = [URLQueryItem(name: "client_id", value: clientID), URLQueryItem(name: "state", value: state)]
        if let redirectURI { items.append(URLQueryItem(name: "redirect_uri", value: redirectURI)) }
        items.append(URLQueryItem(name: "response_type", value: "code"))
        components.percentEncodedQuery = items.map { "\($0.name)=\(Self.formEncode($0.value ?? ""))" }
            .joined(separator: "&")
        return components.url!
    }

    /// The code in the URL the browser was redirected to (or just its query), once its `state`
    /// is this login's. The code is kept exactly as sent (it may end in `=`).
    public func code(fromRedirect redirect: String) throws -> String {
        let text = redirect.trimmingCharacters(in: .whitespacesAndNewlines)
        let query: String
        if let components = URLComponents(string: text), let percentEncoded = components.percentEncodedQuery {
            query = percentEncoded
        } else {
            query = text.hasPrefix("?") ? String(text.dropFirst()) : text
        }
        var fields: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard let name = parts.first?.removingPercentEncoding else { continue }
            fields[name] = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
        }
        if let error = fields["error"] {
            let detail = fields["error_description"].map { ": \($0)" } ?? ""
            throw AuthError(.noCode, "Intercom did not authorize the app (\(error)\(detail)); nothing was stored")
        }
        guard fields["state"] == state else {
            throw AuthError(
                .stateMismatch,
                fields["state"] == nil
                    ? "the redirect carries no state: paste the whole URL the browser ended on; nothing was stored"
                    : "the redirect's state is not this login's (a stale or forged redirect): refused, nothing was stored")
        }
        guard let code = fields["code"], !code.isEmpty else {
            throw AuthError(.noCode, "the redirect carries no code: paste the whole URL the browser ended on")
        }
        return code
    }

    /// Exchanges a code for an access token (`POST /auth/eagle/token`, form-encoded). A code
    /// works once: a refused one gives Intercom's 401 as an `IntercomError`.
    /// With a `logger`, the exchange is logged as ``IntercomMirror/Configuration/logger`` logs
    /// a mirror's (the code, the secret and the token are never logged).
    public func exchange(_ code: String, logger: Logger? = nil) async throws -> String {
        try await exchange(code, transport: defaultHTTPTransport(timeout: timeout, logger: logger))
    }

    /// `exchange(_:logger:)` through `transport`, or the default one when nil.
    package func exchange(_ code: String, transport: (any HTTPTransport)?) async throws -> String {
        let body = [("code", code), ("client_id", clientID), ("client_secret", clientSecret)]
            .map { "\($0.0)=\(Self.formEncode($0.1))" }.joined(separator: "&")
        let request = HTTPRequest(
            method: "POST", url: endpoints.token,
            headers: ["Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"],
            body: Data(body.utf8), timeout: timeout, freshConnection: true,
            maximumBodyBytes: HTTPRequest.maximumObjectBytes)
        let operation = "POST /auth/eagle/token"
        let response: HTTPResponse
        do {
            response = try await (transport ?? defaultHTTPTransport(timeout: timeout)).send(request)
        } catch HTTPTransportError.answerTooLarge(let limit, let declared) {
            throw IntercomError(
                kind: .permanent, status: nil, code: "response_too_large",
                message: IntercomError.tooLargeMessage(limit: limit, declared: declared, host: endpoints.token.host),
                operation: operation)
        } catch let error as HTTPTransportError {
            throw IntercomError(
                kind: .transient, status: nil, code: "network_unreachable",
                message: "the token endpoint \(endpoints.token.host ?? "") could not be reached (\(error))",
                operation: operation)
        }
        guard (200..<300).contains(response.status) else {
            var error = IntercomError(response: response, operation: operation)
            if response.status == 401 {
                error.message += ": the code was refused (a code works once and expires quickly; run `auth login` again)"
            }
            throw error
        }
        let answer = try? JSONValue(jsonText: String(decoding: response.body, as: UTF8.self))
        guard let token = answer?["access_token"]?.string ?? answer?["token"]?.string, !token.isEmpty else {
            throw IntercomError(
                kind: .permanent, status: response.status, code: "malformed_response",
                message: "the token endpoint answered without a token", operation: operation)
        }
        return token
    }

    static func formEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }
}

extension Credentials {
    /// Checks a token with `GET /me` and returns what to store: the admin, the workspace, its
    /// region and timezone. A refused token throws the `IntercomError` (401). Without an explicit
    /// `baseURL`, later requests go to the region `/me` reports.
    public static func connect(
        token: String, method: Method, region: IntercomRegion = .us, baseURL: URL? = nil, version: String = "2.16",
        timeout: TimeInterval = 30, clock: WallClock = .system, logger: Logger? = nil
    ) async throws -> Credentials {
        try await connect(
            token: token, method: method, region: region, baseURL: baseURL, version: version, timeout: timeout,
            transport: defaultHTTPTransport(timeout: timeout, logger: logger), now: clock.unixSeconds)
    }

    /// `connect(token:method:region:baseURL:version:timeout:clock:logger:)` through `transport`, or
    /// the default one when nil.
    package static func connect(
        token: String, method: Method, region: IntercomRegion = .us, baseURL: URL? = nil, version: String = "2.16",
        timeout: TimeInterval = 30, transport: (any HTTPTransport)?, now: Int = Int(Date().timeIntervalSince1970)
    ) async throws -> Credentials {
        let client = IntercomClient(
            connection: IntercomConnection(
                baseURL: baseURL ?? region.baseURL, accessToken: token, version: version, timeout: timeout),
            transport: transport)
        let me = try JSONValue(
            jsonText: try await client.sendJSON("GET", "/me", maximumBodyBytes: HTTPRequest.maximumObjectBytes).text)
        guard let adminID = me["id"]?.string ?? me["id"]?.int.map(String.init), let app = me["app"],
            let workspaceID = app["id_code"]?.string
        else {
            throw IntercomError(
                kind: .permanent, status: 200, code: "malformed_response",
                message: "GET /me gave no admin id or workspace", operation: "GET /me")
        }
        return Credentials(
            accessToken: token, method: method, adminID: adminID, adminEmail: me["email"]?.string,
            workspaceID: workspaceID, workspaceName: app["name"]?.string, region: app["region"]?.string ?? region.rawValue,
            timezone: app["timezone"]?.string, baseURL: baseURL?.absoluteString, createdAt: now)
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
