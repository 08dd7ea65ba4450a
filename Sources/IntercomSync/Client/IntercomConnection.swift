import Foundation

/// Intercom's regional API hosts.
public enum IntercomRegion: String, Sendable, CaseIterable {
    case us = "US"
    case eu = "EU"
    case au = "AU"

    public var baseURL: URL {
        switch self {
        case .us: URL(string: "https://api.intercom.io")!
        case .eu: URL(string: "https://api.eu.intercom.io")!
        case .au: URL(string: "https://api.au.intercom.io")!
        }
    }

    /// Accepts `us`, `EU`, … as `/me` reports them or a person types them.
    public init?(name: String) {
        self.init(rawValue: name.uppercased())
    }
}

/// Where and as whom the client talks to Intercom.
public struct IntercomConnection: Sendable, Equatable {
    public var baseURL: URL
    public var accessToken: String
    /// Sent as `Intercom-Version` on every request.
    public var version: String
    /// Seconds to wait for each answer.
    public var timeout: TimeInterval

    public init(baseURL: URL, accessToken: String, version: String = "2.16", timeout: TimeInterval = 30) {
        self.baseURL = baseURL
        self.accessToken = accessToken
        self.version = version
        self.timeout = timeout
    }

    public init(region: IntercomRegion, accessToken: String, version: String = "2.16", timeout: TimeInterval = 30) {
        self.init(baseURL: region.baseURL, accessToken: accessToken, version: version, timeout: timeout)
    }

    /// Whether `token` can go in an `Authorization` header as it is: printable ASCII without
    /// spaces, as Intercom's tokens are. A line break in it would add headers of its own.
    public static func isUsableToken(_ token: String) -> Bool {
        !token.isEmpty && token.utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }

    /// True when requests to `url` would carry the access token unencrypted over a network:
    /// plain `http` to anything but this machine's loopback (`localhost`, 127.0.0.0/8, `::1`).
    public static func sendsTokenInClear(to url: URL) -> Bool {
        guard url.scheme?.lowercased() == "http" else { return false }
        let host = (url.host ?? "").lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if host == "localhost" || host == "::1" || host.hasSuffix(".localhost") { return false }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        let isIPv4Loopback = octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
        return !isIPv4Loopback
    }
}
