// Apple's platforms only: on Linux, URLSession is FoundationNetworking over libcurl, which would
// load libcurl into every command, offline ones too, and which opens connections beyond its
// bound; `CurlTransport` drives libcurl itself there.
#if canImport(Darwin)
    import Foundation

    /// Sends requests through an ephemeral URLSession with its cache switched off, so a 304 reaches
    /// the engine as a 304 and nothing of a contact is kept outside the mirror.
    ///
    /// A request marked `freshConnection` goes through a session of its own, on a new connection that
    /// closes after it, so that a write that cannot be repeated never rides a reused connection
    /// that might die under it and be re-sent.
    ///
    /// An answer is read as it arrives and cut off at the request's `maximumBodyBytes`.
    ///
    /// Redirects are never followed. Intercom's API does not redirect, and a redirected request
    /// would carry its `Authorization` header (the access token) to wherever the answer points; the
    /// 3xx answer is handed back as it is, and the client reports it.
    public final class URLSessionTransport: HTTPTransport, @unchecked Sendable {
        // URLSession is thread-safe; it is not marked Sendable on every platform.
        private let session: URLSession
        private let makeSession: @Sendable () -> URLSession

        /// `timeout` bounds each request, as the session's own limit, rounded up to a whole second.
        public init(timeout: TimeInterval = 60, maximumConnectionsPerHost: Int = 6) {
            // Made once: a session copies its configuration.
            nonisolated(unsafe) let configuration = URLSessionConfiguration.ephemeral
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
            var data = Data()
            let response: URLResponse
            let fresh = request.freshConnection ? makeSession() : nil
            defer { fresh?.finishTasksAndInvalidate() }
            let session = fresh ?? session
            let limit = request.maximumBodyBytes
            do {
                // Read as it arrives, so that an answer past its bound is cut off there.
                let (bytes, answer) = try await session.bytes(for: urlRequest, delegate: RedirectRefusal.shared)
                response = answer
                if answer.expectedContentLength > Int64(limit) {
                    bytes.task.cancel()
                    throw HTTPTransportError.answerTooLarge(limit: limit, declared: Int(answer.expectedContentLength))
                }
                for try await byte in bytes {
                    guard data.count < limit else {
                        bytes.task.cancel()
                        throw HTTPTransportError.answerTooLarge(limit: limit, declared: nil)
                    }
                    data.append(byte)
                }
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
#endif
