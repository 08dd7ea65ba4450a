import ArgumentParser
import CLISupport
import Foundation
import IntercomSync

struct AuthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auth",
        abstract: "Connect to an Intercom workspace, show the connection, or forget it.",
        discussion: """
            The token is kept in a file only you can read: $INTERCOM_SYNC_CREDENTIALS, else \
            $XDG_CONFIG_HOME/intercom-sync/credentials.json (~/.config/… by default), mode 0600 in \
            a 0700 folder. A file others can read is refused. INTERCOM_ACCESS_TOKEN or --token \
            overrides the stored token for one run. The token is never printed: `auth status` \
            shows a fingerprint. Intercom tokens do not expire; a revoked one makes every command \
            say to log in again.
            """,
        subcommands: [AuthLoginCommand.self, AuthTokenCommand.self, AuthStatusCommand.self, AuthLogoutCommand.self]
    )
}

/// Where the credentials file is, shared by the auth commands.
struct CredentialOptions: ParsableArguments {
    @Option(
        name: .customLong("credentials"),
        help: ArgumentHelp(
            "The credentials file. Default: $INTERCOM_SYNC_CREDENTIALS, else ~/.config/intercom-sync/credentials.json.",
            valueName: "path"))
    var path: String?

    var store: CredentialStore { CredentialStore(path: path ?? CredentialStore.defaultPath()) }
}

struct AuthLoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Log in with OAuth (authorization code): approve the app in a browser, then come back here.",
        discussion: """
            Prints the authorize URL with a fresh random state. Open it, approve, and Intercom \
            redirects the browser to your app's redirect URL with a code: paste that whole URL \
            here (Intercom accepts only HTTPS redirect URLs, so this is the usual way). With \
            --listen, a one-shot listener on 127.0.0.1 catches the redirect instead (register \
            http://127.0.0.1:PORT/callback as a redirect URL where that is allowed, or forward to \
            it). The state is checked (a mismatch is refused, nothing stored), the code is \
            exchanged for a token, GET /me names the admin, workspace, region and timezone, and \
            all of it is stored. The client secret is used once and never stored.

            Examples:
              intercom-sync auth login --client-id 4f2… --client-secret "$SECRET" \\
                  --redirect-uri https://example.com/cb
              intercom-sync auth login --client-id 4f2… --client-secret "$SECRET" \\
                  --listen 8765
              # against `intercom-sync sim`:
              intercom-sync auth login --client-id sim-client-id \\
                  --client-secret sim-client-secret \\
                  --listen 0 --base-url http://127.0.0.1:8700
            """
    )

    @OptionGroup var credentials: CredentialOptions
    @OptionGroup var connection: ConnectionOptions

    @Option(name: .customLong("client-id"), help: "Your Intercom app's client id.")
    var clientID: String

    @Option(
        name: .customLong("client-secret"),
        help: "Your app's client secret. Default: $INTERCOM_CLIENT_SECRET (keeps it out of shell history).")
    var clientSecret: String?

    @Option(
        name: .customLong("redirect-uri"),
        help: "One of the app's registered redirect URLs. Default: the app's first (or the listener's with --listen).")
    var redirectURI: String?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Catch the redirect on 127.0.0.1:PORT (0 picks a free port).", valueName: "port"))
    var listen: Int?

    @Option(
        parsing: .unconditional, help: ArgumentHelp("Seconds to wait for the redirect.", valueName: "seconds"))
    var wait: Double = 300

    func validate() throws {
        if let listen, !(0...65535).contains(listen) { throw ValidationError("--listen takes a port from 0 to 65535") }
        try SecondsFlag.check(wait, "--wait", aboveZero: true)
        if resolvedSecret == nil {
            throw ValidationError("give --client-secret, or set INTERCOM_CLIENT_SECRET")
        }
    }

    var resolvedSecret: String? {
        if let clientSecret, !clientSecret.isEmpty { return clientSecret }
        return ProcessInfo.processInfo.environment["INTERCOM_CLIENT_SECRET"].flatMap { $0.isEmpty ? nil : $0 }
    }

    func run() async throws {
        let store = credentials.store
        let apiBase = connection.baseURL.flatMap(URL.init(string:))
        let listener = try listen.map { try LoopbackRedirectListener(port: $0) }
        let login = OAuthLogin(
            clientID: clientID, clientSecret: resolvedSecret!, redirectURI: redirectURI ?? listener?.redirectURI,
            endpoints: apiBase.map(OAuthLogin.Endpoints.init(apiBase:)) ?? .intercom, timeout: connection.timeout)
        Output.note("Open this URL in a browser and approve the app:\n\n  \(login.authorizeURL.absoluteString)\n")
        let redirect: String
        if let listener {
            Output.note("Waiting for the redirect on 127.0.0.1:\(listener.port) (up to \(Int(wait)) s)…")
            redirect = try await listener.waitForRedirect(timeout: wait)
        } else {
            Output.note("Then paste the full URL the browser was sent to (it holds code= and state=):")
            guard let line = readLine(), !line.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw CommandFailure("no redirect URL was given; nothing was stored")
            }
            redirect = line
        }
        let code = try login.code(fromRedirect: redirect)
        let token = try await login.exchange(code, logger: connection.logger)
        let connected = try await Credentials.connect(
            token: token, method: .oauth, region: connection.requestedRegion, baseURL: apiBase,
            version: connection.version, timeout: connection.timeout, logger: connection.logger)
        try store.save(connected)
        Output.line("logged in: \(connected)\ncredentials: \(store.path)")
    }
}

struct AuthTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Store an access token (a private app's), after checking it with GET /me.",
        discussion: """
            Pass - to read the token from standard input, so it stays out of your shell history.

            Examples:
              intercom-sync auth token - < token.txt
              pbpaste | intercom-sync auth token -
              intercom-sync auth token - --base-url http://127.0.0.1:8700 \\
                  <<< sim-access-token
            """
    )

    @OptionGroup var credentials: CredentialOptions
    @OptionGroup var connection: ConnectionOptions

    @Argument(help: ArgumentHelp("The access token, or - to read it from standard input.", valueName: "token"))
    var value: String

    func run() async throws {
        var token = value
        if value == "-" {
            token = (readLine(strippingNewline: true) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard IntercomConnection.isUsableToken(token) else {
            throw ValidationError("the token is empty or has spaces or control characters in it")
        }
        let connected = try await Credentials.connect(
            token: token, method: .accessToken, region: connection.requestedRegion,
            baseURL: connection.baseURL.flatMap(URL.init(string:)), version: connection.version,
            timeout: connection.timeout, logger: connection.logger)
        try credentials.store.save(connected)
        Output.line("connected: \(connected)\ncredentials: \(credentials.store.path)")
    }
}

struct AuthStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the stored connection: workspace, admin, region, where it lives, the token's fingerprint.",
        discussion: """
            Reads only the credentials file; it asks Intercom nothing. Exit status 1 when there is no \
            stored login.

            Examples:
              intercom-sync auth status
              intercom-sync auth status --json
            """
    )

    @OptionGroup var credentials: CredentialOptions

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let store = credentials.store
        let override = ProcessInfo.processInfo.environment["INTERCOM_ACCESS_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        guard let stored = try store.load() else {
            throw CommandFailure(
                "not logged in (no \(store.path)): run `intercom-sync auth login` or `intercom-sync auth token -`")
        }
        if json {
            Output.data(
                JSONValue.object([
                    "workspace_id": .string(stored.workspaceID),
                    "workspace_name": stored.workspaceName.map(JSONValue.string) ?? .null,
                    "admin_id": .string(stored.adminID), "admin_email": stored.adminEmail.map(JSONValue.string) ?? .null,
                    "region": .string(stored.region), "timezone": stored.timezone.map(JSONValue.string) ?? .null,
                    "api_base_url": .string(stored.apiBaseURL.absoluteString), "method": .string(stored.method.rawValue),
                    "token_fingerprint": .string(stored.fingerprint), "credentials_path": .string(store.path),
                    "overridden_by_environment": .bool(override != nil),
                ]).jsonText)
            return
        }
        var lines = [
            "workspace:   \(stored.workspaceID)\(stored.workspaceName.map { " (\($0))" } ?? "")",
            "admin:       \(stored.adminID)\(stored.adminEmail.map { " (\($0))" } ?? "")",
            "region:      \(stored.region)\(stored.timezone.map { ", timezone \($0)" } ?? "")",
            "API:         \(stored.apiBaseURL.absoluteString)",
            "login:       \(stored.method == .oauth ? "OAuth" : "access token"), token \(stored.fingerprint)",
            "credentials: \(store.path)",
        ]
        if override != nil { lines.append("note: INTERCOM_ACCESS_TOKEN is set and overrides the stored token") }
        Output.line(lines.joined(separator: "\n"))
    }
}

struct AuthLogoutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logout",
        abstract: "Forget the stored token (revoke it in Intercom too, if it may have leaked).",
        discussion: """
            Examples:
              intercom-sync auth logout
            """
    )

    @OptionGroup var credentials: CredentialOptions

    func run() throws {
        let store = credentials.store
        Output.line(try store.remove() ? "logged out: removed \(store.path)" : "not logged in: nothing to remove")
    }
}
