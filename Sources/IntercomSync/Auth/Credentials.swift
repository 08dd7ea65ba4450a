import Foundation

/// A workspace connection: the token and what `GET /me` said about it.
///
/// The token is a key to the whole workspace: `description` and `fingerprint` never show it, and
/// it is written only to the credentials file (mode 0600).
public struct Credentials: Codable, Sendable, Equatable, CustomStringConvertible {
    public enum Method: String, Codable, Sendable {
        /// OAuth2 authorization code (`auth login`).
        case oauth
        /// An access token given by hand (`auth token`).
        case accessToken = "access_token"
    }

    public var accessToken: String
    public var method: Method
    public var adminID: String
    public var adminEmail: String?
    /// `app.id_code`.
    public var workspaceID: String
    public var workspaceName: String?
    /// `US`, `EU` or `AU`, as `/me` reports it.
    public var region: String
    public var timezone: String?
    /// The API base URL the token was checked against, when it was not the region's.
    public var baseURL: String?
    public var createdAt: Int

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case method
        case adminID = "admin_id"
        case adminEmail = "admin_email"
        case workspaceID = "workspace_id"
        case workspaceName = "workspace_name"
        case region, timezone
        case baseURL = "base_url"
        case createdAt = "created_at"
    }

    /// `sha256:` and the first 12 hex digits of the token's SHA-256: tells tokens apart, reveals
    /// nothing of them.
    public var fingerprint: String {
        Self.fingerprint(of: accessToken)
    }

    public static func fingerprint(of token: String) -> String {
        SHA256.fingerprint(of: token)
    }

    /// The API base URL: the stored one, else the region's.
    public var apiBaseURL: URL {
        baseURL.flatMap(URL.init(string:)) ?? (IntercomRegion(name: region) ?? .us).baseURL
    }

    public var description: String {
        "workspace \(workspaceID) (\(region)), admin \(adminID), token \(fingerprint)"
    }
}

/// A login that did not succeed, or credentials that cannot be used.
public struct AuthError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure it is. New kinds may come with new versions: a `switch` over it
    /// needs a `default:`, which a new kind does not break.
    public struct Kind: ErrorKind {
        public let name: String

        private init(_ name: String) { self.name = name }

        /// The redirect's `state` is not the one this login sent: refused, nothing stored.
        public static let stateMismatch = Kind("stateMismatch")
        /// The redirect carries no code (the user declined, or the URL was cut).
        public static let noCode = Kind("noCode")
        /// The credentials file is readable by group or others.
        public static let unsafeCredentials = Kind("unsafeCredentials")
        public static let unreadableCredentials = Kind("unreadableCredentials")
        /// No redirect came back in time to the loopback listener.
        public static let listenerFailed = Kind("listenerFailed")
    }

    public var kind: Kind
    public var description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

extension AuthError: IntercomSyncError {
    /// None: the description says what to do.
    public var remedy: ErrorRemedy? { nil }
}
