import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Sends requests through an ephemeral URLSession with its cache switched off, so a 304 reaches
/// the engine as a 304 and nothing of a contact is kept outside the mirror.
///
/// A request marked `freshConnection` goes through a session of its own, on a new connection that
/// closes after it: libcurl (under URLSession on Linux) silently re-sends a request whose reused
/// connection dies before any answer, which must never happen to a write that cannot be repeated.
/// (One shared session for such requests left about 1 in 300 of them hanging, unsent, until the
/// timeout: libcurl handed them connections the server was closing.)
///
/// Redirects are never followed. Intercom's API does not redirect, and a redirected request
/// would carry its `Authorization` header (the access token) to wherever the answer points; the
/// 3xx answer is handed back as it is, and the client reports it.
public final class URLSessionTransport: HTTPTransport, @unchecked Sendable {
    // URLSession is thread-safe; it is not marked Sendable on every platform.
    private let session: URLSession
    private let makeSession: @Sendable () -> URLSession

    /// `timeout` bounds each request: the session's own limit, since Linux's URLSession does not
    /// honour a request's `timeoutInterval`. It counts whole seconds (a fraction would fire at
    /// once), so it is rounded up to at least one.
    public init(timeout: TimeInterval = 60, maximumConnectionsPerHost: Int = 6) {
        // Made once: a session copies its configuration, and a write's fresh session (one a
        // request) then costs no look at the home folder (`StrayFolders`).
        nonisolated(unsafe) let configuration = StrayFolders.removedAfter { URLSessionConfiguration.ephemeral }
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.httpCookieStorage = nil
        configuration.httpShouldSetCookies = false
        configuration.httpMaximumConnectionsPerHost = maximumConnectionsPerHost
        configuration.timeoutIntervalForRequest = max(1, timeout.rounded(.up))
        @Sendable func makeSession() -> URLSession {
            URLSession(configuration: configuration, delegate: RedirectRefusal.shared, delegateQueue: nil)
        }
        session = makeSession()
        self.makeSession = makeSession
    }

    deinit {
        session.finishTasksAndInvalidate()
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        var urlRequest = URLRequest(
            url: request.url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: request.timeout)
        urlRequest.httpMethod = request.method
        for (name, value) in request.headers {
            urlRequest.setValue(value, forHTTPHeaderField: name)
        }
        urlRequest.httpBody = request.body
        if request.freshConnection { urlRequest.setValue("close", forHTTPHeaderField: "Connection") }
        let data: Data
        let response: URLResponse
        let fresh = request.freshConnection ? makeSession() : nil
        defer { fresh?.finishTasksAndInvalidate() }
        let session = fresh ?? session
        do {
            // In a task of its own, which the caller's cancellation does not reach: Foundation on
            // Linux can deadlock when a request is cancelled as it completes (the cancellation
            // waits for the session's queue while that queue waits for the task to resume it),
            // and a sync that stops (an error in one worker, a prefetch no longer wanted) cancels
            // requests in flight. A cancelled caller gets its answer, or the timeout, and stops
            // at its next check.
            (data, response) = try await Task {
                try await session.data(for: urlRequest, delegate: RedirectRefusal.shared)
            }.value
        } catch let error as URLError {
            throw Self.transportError(error)
        }
        guard let http = response as? HTTPURLResponse else {
            throw HTTPTransportError.connectionLost("the answer was not HTTP")
        }
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String, let value = value as? String { headers[name.lowercased()] = value }
        }
        return HTTPResponse(status: http.statusCode, headers: headers, body: data)
    }

    private static func transportError(_ error: URLError) -> HTTPTransportError {
        switch error.code {
        case .timedOut:
            return .timedOut
        case .cannotConnectToHost, .cannotFindHost, .dnsLookupFailed, .notConnectedToInternet,
            .internationalRoamingOff, .dataNotAllowed, .secureConnectionFailed:
            return .unreachable(error.localizedDescription)
        default:
            return .connectionLost(error.localizedDescription)
        }
    }
}

/// Foundation on Linux makes folders for a cookie store and a URL cache (under
/// `~/.local/share/` and `~/.cache/org.swift.foundation.URLCache/`) the first time a session
/// configuration is made, even an ephemeral one that will use neither. A tool must not leave
/// folders outside its own, so the empty ones that appear while `body` runs are removed.
/// Only folders that did not exist before and are empty after are touched.
enum StrayFolders {
    private static let lock = NSLock()

    static func removedAfter<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        let fileManager = FileManager.default
        var roots: [URL] = []
        for directory in [FileManager.SearchPathDirectory.applicationSupportDirectory, .cachesDirectory] {
            if let url = fileManager.urls(for: directory, in: .userDomainMask).first { roots.append(url) }
        }
        if let caches = roots.last { roots.append(caches.appendingPathComponent("org.swift.foundation.URLCache")) }
        // Each root and the ancestors it lacks, and the children each existing root has now.
        var missing: [String] = []
        var children: [String: Set<String>] = [:]
        for root in roots {
            var url = root.standardizedFileURL
            while !fileManager.fileExists(atPath: url.path), url.path != "/" {
                missing.append(url.path)
                url.deleteLastPathComponent()
            }
            children[root.path] = Set((try? fileManager.contentsOfDirectory(atPath: root.path)) ?? [])
        }
        let result = body()
        var created: [String] = missing
        for root in roots {
            let now = Set((try? fileManager.contentsOfDirectory(atPath: root.path)) ?? [])
            created += now.subtracting(children[root.path] ?? []).map { root.appendingPathComponent($0).path }
        }
        // Deepest first; rmdir removes only an empty folder.
        for path in Set(created).sorted(by: { $0.count > $1.count }) {
            rmdir(path)
        }
        return result
    }
}

/// Answers every redirect with "do not follow": the 3xx answer itself becomes the response.
private final class RedirectRefusal: NSObject, URLSessionTaskDelegate, Sendable {
    static let shared = RedirectRefusal()

    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }
}
