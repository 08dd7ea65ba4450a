import Foundation
import IntercomSync

/// Where the mirror lives when no `--db` is given.
public enum MirrorLocation {
    /// `$INTERCOM_SYNC_DB`, else `$XDG_DATA_HOME/intercom-sync/mirror.sqlite`, else
    /// `~/.local/share/intercom-sync/mirror.sqlite` (the XDG default).
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let path = environment["INTERCOM_SYNC_DB"], !path.isEmpty {
            return path
        }
        let dataHome: String
        if let xdg = environment["XDG_DATA_HOME"], xdg.hasPrefix("/") {
            dataHome = xdg
        } else {
            let home = environment["HOME"] ?? NSHomeDirectory()
            dataHome = home + "/.local/share"
        }
        return dataHome + "/intercom-sync/mirror.sqlite"
    }
}
