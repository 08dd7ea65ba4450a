import ArgumentParser
import CLISupport
import Foundation
import IntercomSync
import Logging
import Synchronization

/// Where Intercom is and the token to reach it, shared by every command that talks to it.
struct ConnectionOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "An Intercom access token. Default: $INTERCOM_ACCESS_TOKEN. Prefer the variable or --token-file: a token on the command line shows in `ps` to other users and lands in your shell history.",
            valueName: "token"))
    var token: String?

    @Option(
        name: .customLong("token-file"),
        help: ArgumentHelp(
            "Read the access token from this file, or from standard input with -. Unlike --token, it never shows in `ps`.",
            valueName: "path"))
    var tokenFile: String?

    @Option(
        help: ArgumentHelp(
            "The workspace's region: us, eu or au. Picks the API host. Default: the stored login's, else us.",
            valueName: "region"))
    var region: String?
    @Option(
        name: .customLong("base-url"),
        help: ArgumentHelp(
            "An explicit API base URL (a proxy, or `intercom-sync sim`'s). Overrides --region.", valueName: "url"))
    var baseURL: String?

    @Flag(
        name: .customLong("allow-insecure-http"),
        help: "Allow a plain http:// base URL to a host other than this machine (the token then travels unencrypted).")
    var allowInsecureHTTP = false

    @Option(name: .customLong("intercom-version"), help: "The Intercom-Version header to send.")
    var version = "2.16"

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Seconds to wait for each answer from Intercom. A request that gets none is tried twice, then given up (exit 4).",
            valueName: "seconds"))
    var timeout: Double = 30

    @Option(
        name: .customLong("rate-limit-patience"), parsing: .unconditional,
        help: ArgumentHelp(
            "Seconds to keep waiting while Intercom answers 429 (rate limited) before giving up (exit 4, resumable).",
            valueName: "seconds"))
    var rateLimitPatience: Double = IntercomMirror.Configuration().rateLimitPatience.asSeconds

    @Flag(
        name: .shortAndLong,
        help: "Log each request to stderr (-vv adds headers). The token is never shown, only its fingerprint.")
    var verbose: Int

    func validate() throws {
        if let region, IntercomRegion(name: region) == nil {
            throw ValidationError("--region must be us, eu or au, not \(region)")
        }
        if let baseURL {
            guard let url = URL(string: baseURL), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil
            else {
                throw ValidationError("--base-url must be an http(s) URL, not \(baseURL)")
            }
            if IntercomConnection.sendsTokenInClear(to: url) && !allowInsecureHTTP {
                throw ValidationError(Self.insecureRefusal(url))
            }
        }
        try SecondsFlag.check(timeout, "--timeout", aboveZero: true)
        try SecondsFlag.check(rateLimitPatience, "--rate-limit-patience")
        if token != nil && tokenFile != nil { throw ValidationError("give the token once: --token or --token-file") }
    }

    /// The token from --token or --token-file, else the environment; nil when none has one.
    var resolvedToken: String? {
        get throws {
            if let token, !token.isEmpty { return token }
            if let tokenFile { return try Self.readToken(from: tokenFile) }
            if let token = ProcessInfo.processInfo.environment["INTERCOM_ACCESS_TOKEN"], !token.isEmpty { return token }
            return nil
        }
    }

    /// The token in a file (or standard input, `-`): its first line, trimmed.
    static func readToken(from path: String) throws -> String {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let read = FileManager.default.contents(atPath: path) else {
                throw CommandFailure("--token-file \(path): cannot read it")
            }
            data = read
        }
        let token =
            String(decoding: data.prefix(64 << 10), as: UTF8.self)
            .split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard !token.isEmpty, !token.contains(where: \.isWhitespace) else {
            throw CommandFailure("--token-file \(path): holds no token (one line, without spaces)")
        }
        return token
    }

    /// The connection for the token given for this run (--token, --token-file,
    /// INTERCOM_ACCESS_TOKEN), else the stored login's. The host is --base-url, else --region's,
    /// else the stored login's.
    func intercomConnection() throws -> IntercomConnection {
        let given = try resolvedToken
        let stored = given == nil ? try CredentialStore(path: CredentialStore.defaultPath()).load() : nil
        guard let token = given ?? stored?.accessToken else {
            throw CommandFailure(
                "not connected to Intercom: run `intercom-sync auth login --client-id … --client-secret …` or "
                    + "`intercom-sync auth token -`, or set INTERCOM_ACCESS_TOKEN")
        }
        guard IntercomConnection.isUsableToken(token) else {
            throw CommandFailure(
                "the access token is empty or holds spaces or control characters, which no Intercom token has: "
                    + "check --token, --token-file or INTERCOM_ACCESS_TOKEN")
        }
        let url = apiBaseURL(stored: stored)
        if IntercomConnection.sendsTokenInClear(to: url) && !allowInsecureHTTP {
            throw CommandFailure(Self.insecureRefusal(url))
        }
        return IntercomConnection(baseURL: url, accessToken: token, version: version, timeout: timeout)
    }

    /// `configuration` with this run's way of talking to Intercom: --rate-limit-patience, a
    /// note while 429s hold requests back, --verbose's log, --allow-insecure-http.
    func configured(_ configuration: IntercomMirror.Configuration) -> IntercomMirror.Configuration {
        var configuration = configuration
        configuration.rateLimitPatience = .seconds(rateLimitPatience)
        configuration.onRateLimitWait = Self.rateLimitNotice(patience: rateLimitPatience)
        configuration.logger = logger
        configuration.allowsInsecureHTTP = allowInsecureHTTP
        return configuration
    }

    /// A note on stderr, at most every ten seconds, while requests wait through answers of 429.
    static func rateLimitNotice(patience: Double) -> @Sendable (Duration) -> Void {
        let last = Mutex(Date.distantPast)
        return { waited in
            let due = last.withLock { last in
                guard Date().timeIntervalSince(last) >= 10 else { return false }
                last = Date()
                return true
            }
            guard due else { return }
            Output.note(
                String(
                    format: "Intercom is answering 429 (rate limited): waiting for it, %lld s so far of the %.0f s "
                        + "--rate-limit-patience", waited.components.seconds, patience))
        }
    }

    static func insecureRefusal(_ url: URL) -> String {
        "\(url.absoluteString) is plain http to another machine: the access token would travel unencrypted. "
            + "Use https, or pass --allow-insecure-http if you mean it"
    }

    /// --region, else US: where a new login checks its token (`GET /me` then names the real one).
    var requestedRegion: IntercomRegion {
        region.flatMap(IntercomRegion.init(name:)) ?? .us
    }

    func apiBaseURL(stored: Credentials?) -> URL {
        if let baseURL, let url = URL(string: baseURL) { return url }
        if let region, let named = IntercomRegion(name: region) { return named.baseURL }
        return stored?.apiBaseURL ?? IntercomRegion.us.baseURL
    }

    /// Each request logged to stderr with --verbose (-vv adds headers); nil without it.
    var logger: Logger? {
        guard verbose > 0 else { return nil }
        var logger = Logger(label: "intercom-sync.http") { label in StreamLogHandler.standardError(label: label) }
        logger.logLevel = verbose > 1 ? .debug : .info
        return logger
    }
}
