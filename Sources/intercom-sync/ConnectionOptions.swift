import ArgumentParser
import Foundation
import IntercomSync

/// Where Intercom is and the token to reach it, shared by every command that talks to it.
struct ConnectionOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "An Intercom access token. Default: $INTERCOM_ACCESS_TOKEN. Prefer the variable: a token on the command line lands in your shell history.",
            valueName: "token"))
    var token: String?

    @Option(help: ArgumentHelp("The workspace's region: us, eu or au. Picks the API host.", valueName: "region"))
    var region: String = "us"

    @Option(
        name: .customLong("base-url"),
        help: ArgumentHelp(
            "An explicit API base URL (a proxy, or `intercom-sync sim`'s). Overrides --region.", valueName: "url"))
    var baseURL: String?

    @Option(name: .customLong("intercom-version"), help: "The Intercom-Version header to send.")
    var version = "2.16"

    @Option(help: ArgumentHelp("Seconds to wait for each answer from Intercom.", valueName: "seconds"))
    var timeout: Double = 30

    func validate() throws {
        guard IntercomRegion(name: region) != nil else {
            throw ValidationError("--region must be us, eu or au, not \(region)")
        }
        if let baseURL {
            guard let url = URL(string: baseURL), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil
            else {
                throw ValidationError("--base-url must be an http(s) URL, not \(baseURL)")
            }
        }
        guard timeout > 0 else { throw ValidationError("--timeout must be more than 0 seconds") }
    }

    /// The token from --token, else the environment; nil when neither has one.
    var resolvedToken: String? {
        if let token, !token.isEmpty { return token }
        if let token = ProcessInfo.processInfo.environment["INTERCOM_ACCESS_TOKEN"], !token.isEmpty { return token }
        return nil
    }

    func client() throws -> IntercomClient {
        guard let token = resolvedToken else {
            throw CommandFailure("no access token: set INTERCOM_ACCESS_TOKEN or pass --token")
        }
        let base = baseURL.flatMap(URL.init(string:)) ?? IntercomRegion(name: region)!.baseURL
        return IntercomClient(
            connection: IntercomConnection(baseURL: base, accessToken: token, version: version, timeout: timeout))
    }
}
