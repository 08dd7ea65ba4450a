import Foundation
import IntercomSync

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
