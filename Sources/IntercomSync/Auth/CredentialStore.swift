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
        "sha256:" + SHA256.hex(token).prefix(12)
    }

    /// The API base URL: the stored one, else the region's.
    public var apiBaseURL: URL {
        baseURL.flatMap(URL.init(string:)) ?? (IntercomRegion(name: region) ?? .us).baseURL
    }

    public var description: String {
        "workspace \(workspaceID) (\(region)), admin \(adminID), token \(fingerprint)"
    }
}

/// Keeps `Credentials` in one JSON file in the user's config folder.
///
/// The folder is created with mode 0700 and the file with 0600, written whole to a temporary file
/// then renamed, so a reader never sees half of it. A file that group or others can read is
/// refused, with the command that fixes it.
public struct CredentialStore: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// `$INTERCOM_SYNC_CREDENTIALS`, else `$XDG_CONFIG_HOME/intercom-sync/credentials.json`, else
    /// `~/.config/intercom-sync/credentials.json`.
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let path = environment["INTERCOM_SYNC_CREDENTIALS"], !path.isEmpty { return path }
        let config =
            environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.config"
        return config + "/intercom-sync/credentials.json"
    }

    /// The stored credentials, or nil when there are none.
    public func load() throws -> Credentials? {
        var status = stat()
        guard stat(path, &status) == 0 else {
            if errno == ENOENT { return nil }
            throw AuthError(.unreadableCredentials, "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        if status.st_mode & 0o077 != 0 {
            throw AuthError(
                .unsafeCredentials,
                "\(path) can be read by other users (mode \(String(status.st_mode & 0o777, radix: 8))): "
                    + "run `chmod 600 \(path)`, then revoke the token in Intercom if others may have read it")
        }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            return try JSONDecoder().decode(Credentials.self, from: data)
        } catch {
            throw AuthError(
                .unreadableCredentials,
                "\(path) is not a credentials file intercom-sync can read: log in again with `intercom-sync auth login` "
                    + "or `intercom-sync auth token -`")
        }
    }

    public func save(_ credentials: Credentials) throws {
        let folder = (path as NSString).deletingLastPathComponent
        if !FileManager.default.fileExists(atPath: folder) {
            try FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(credentials)
        let temporary = path + ".tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_EXCL, 0o600)
        guard descriptor >= 0 else {
            throw AuthError(.unreadableCredentials, "cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        fsync(descriptor)
        close(descriptor)
        guard written == data.count, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw AuthError(.unreadableCredentials, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Removes the credentials; false when there were none.
    @discardableResult
    public func remove() throws -> Bool {
        guard FileManager.default.fileExists(atPath: path) else { return false }
        try FileManager.default.removeItem(atPath: path)
        return true
    }
}

/// A login that did not succeed, or credentials that cannot be used.
public struct AuthError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The redirect's `state` is not the one this login sent: refused, nothing stored.
        case stateMismatch
        /// The redirect carries no code (the user declined, or the URL was cut).
        case noCode
        /// The credentials file is readable by group or others.
        case unsafeCredentials
        case unreadableCredentials
        /// No redirect came back in time to the loopback listener.
        case listenerFailed
    }

    public var kind: Kind
    public var description: String

    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}
