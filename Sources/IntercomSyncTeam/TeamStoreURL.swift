import Foundation

/// Where the team store is: a PostgreSQL connection URL,
/// `postgres://user:password@host:port/database?sslmode=require`, as libpq reads one. A
/// `host` parameter that is a path (`?host=/var/run/postgresql`) connects by that folder's
/// socket. Its `description` never shows the password.
public struct TeamStoreURL: Sendable, Equatable, CustomStringConvertible {
    /// How the connection uses TLS, as libpq's `sslmode` names it.
    public enum SSLMode: String, Sendable, CaseIterable {
        /// Never TLS.
        case disable
        /// TLS when the server offers it (libpq's default).
        case prefer
        /// TLS or no connection; the certificate is not checked.
        case require
        /// TLS with the certificate checked against the system's trusted authorities.
        case verifyCA = "verify-ca"
        /// As `verifyCA`, and the certificate must name the host.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    /// The folder of PostgreSQL's socket, when it connects by one rather than TCP.
    public var socketFolder: String?
    public var username: String
    public var password: String?
    public var database: String
    public var sslMode: SSLMode

    /// Reads a `postgres://` or `postgresql://` URL; anything else, or a part that cannot be
    /// read, is refused naming the part (never the password).
    public init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let components = URLComponents(string: trimmed), let scheme = components.scheme?.lowercased(),
            scheme == "postgres" || scheme == "postgresql"
        else {
            throw TeamStoreError(
                .badURL,
                "the team store must be a PostgreSQL URL, postgres://user:password@host:5432/database "
                    + "(got \(Self.redacting(trimmed)))")
        }
        var parameters: [String: String] = [:]
        for item in components.queryItems ?? [] { parameters[item.name] = item.value ?? "" }
        let user = components.percentEncodedUser.flatMap { $0.removingPercentEncoding }
        guard let user, !user.isEmpty else {
            throw TeamStoreError(.badURL, "the team store URL \(Self.redacting(trimmed)) names no user (postgres://USER@…)")
        }
        username = user
        password = components.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        if let folder = parameters["host"], folder.hasPrefix("/") {
            socketFolder = folder
            host = "localhost"
        } else {
            host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? parameters["host"] ?? "localhost"
        }
        port = components.port ?? parameters["port"].flatMap(Int.init) ?? 5432
        guard (1...65_535).contains(port) else {
            throw TeamStoreError(.badURL, "the team store URL \(Self.redacting(trimmed)) has no usable port")
        }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? user : (path.removingPercentEncoding ?? path)
        let mode = parameters["sslmode"] ?? "prefer"
        guard let sslMode = SSLMode(rawValue: mode) else {
            throw TeamStoreError(
                .badURL,
                "sslmode=\(mode) is not one of " + SSLMode.allCases.map(\.rawValue).joined(separator: ", ")
                    + " (in \(Self.redacting(trimmed)))")
        }
        self.sslMode = sslMode
        if let unknown = parameters.keys.sorted().first(where: { !["sslmode", "host", "port"].contains($0) }) {
            throw TeamStoreError(
                .badURL,
                "the team store URL's parameter \(unknown) is not one intercom-sync reads (sslmode, host, port)")
        }
    }

    /// The URL with its password replaced by `***`.
    public var description: String {
        var text = "postgres://\(username)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)"
        var parameters = ["sslmode=\(sslMode.rawValue)"]
        if let socketFolder { parameters.append("host=\(socketFolder)") }
        text += "?" + parameters.joined(separator: "&")
        return text
    }

    /// A URL as typed, with whatever stands between `://user:` and `@` replaced by `***`:
    /// for messages about a URL that could not be read.
    static func redacting(_ text: String) -> String {
        guard let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].lastIndex(of: "@") else {
            return text
        }
        let credentials = text[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }
}
