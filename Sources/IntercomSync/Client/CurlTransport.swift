import CCurl
import Foundation

/// Sends requests through libcurl's multi interface, on a thread of its own, over a bounded
/// pool of keep-alive connections.
///
/// - **Bounded connections.** At most `maximumConnectionsPerHost` connections to a host are
///   open at once, and as many are kept for reuse. A request beyond them waits in libcurl's
///   queue for a connection to come free, instead of opening one more: a pull with 64 requests
///   in flight uses 64 connections for the whole walk.
/// - **Nothing sent twice by the transport.** A request marked `freshConnection` goes out on a
///   new connection that closes after it: libcurl re-sends a request whose reused connection
///   dies before any answer, which must never happen to a write that cannot be repeated. Such
///   a request, once sent, is not cut short by its task's cancellation either: its answer is
///   what says whether the write happened.
/// - **No redirects.** Intercom's API does not redirect, and a redirected request would carry
///   its `Authorization` header (the access token) wherever the answer points; a 3xx answer
///   is handed back as it is. Only `http` and `https` are spoken.
/// - **No cache, no cookies.** A 304 reaches the engine as a 304 and nothing of a contact is
///   kept outside the mirror.
/// - **Bounded answers.** An answer that declares more than the request's `maximumBodyBytes`
///   is refused at its headers; one that sends more (a stream without end, a small gzip body
///   that unpacks to gigabytes) is cut off as the bytes arrive, counted after decompression.
///   Either fails with `HTTPTransportError.answerTooLarge` and holds at most the bound. The
///   answers being received at once share a budget too (`maximumBytesInFlight`): 64 requests
///   in flight, each under its own bound, cannot hold gigabytes between them.
///
/// libcurl is loaded (`dlopen`) when the first request is sent, not linked: a command that
/// never touches the network starts without the thirty libraries it brings.
package final class CurlTransport: HTTPTransport, Sendable {
    private let timeout: TimeInterval
    private let maximumConnectionsPerHost: Int
    private let started = Started()

    /// `timeout` bounds each request, as its own `timeout` does: the shorter of the two counts.
    package init(timeout: TimeInterval = 60, maximumConnectionsPerHost: Int = 6) {
        self.timeout = timeout
        self.maximumConnectionsPerHost = max(1, maximumConnectionsPerHost)
    }

    deinit {
        started.loop?.stop()
    }

    /// libcurl's version line, loading it if it is not yet: which libcurl a process would use.
    package static func libraryVersion() throws -> String {
        if let failure = ccurl_load() { throw HTTPTransportError.unreachable(String(cString: failure)) }
        return ccurl_version().map { String(cString: $0) } ?? "unknown"
    }

    package func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        try Task.checkCancellation()
        let loop = try started.loop(connections: maximumConnectionsPerHost)
        let transfer = try CurlTransfer(request, timeout: min(timeout, request.timeout), budget: loop.budget)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                transfer.continuation = continuation
                loop.submit(transfer)
            }
        } onCancel: {
            if !request.freshConnection { loop.cancel(transfer) }
        }
    }

    /// The loop, made by the first request.
    private final class Started: @unchecked Sendable {
        private let lock = NSLock()
        private var made: CurlLoop?

        var loop: CurlLoop? { lock.withLock { made } }

        func loop(connections: Int) throws -> CurlLoop {
            try lock.withLock {
                if let made { return made }
                if let failure = ccurl_load() { throw HTTPTransportError.unreachable(String(cString: failure)) }
                let loop = try CurlLoop(connections: connections)
                made = loop
                return loop
            }
        }
    }
}

/// One request's libcurl handle, its answer as it arrives and the caller waiting for it.
/// After `submit`, only the loop's thread touches it.
private final class CurlTransfer: @unchecked Sendable {
    let easy: OpaquePointer
    var continuation: CheckedContinuation<HTTPResponse, any Error>?
    /// Set by a cancellation and read by the loop, both under the loop's lock.
    var cancelled = false
    private var headerList: OpaquePointer?
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: 256)
    private var body = Data()
    private var headers: [String: String] = [:]
    private let maximumBodyBytes: Int
    /// The loop's budget of bytes being received, which `body` draws on until it is handed over.
    private let budget: ReceiveBudget
    private var headerBytes = 0
    /// Set when the answer went past a bound and reading stopped: the bound, and the length the
    /// server declared if it declared one.
    private var overflow: (limit: Int, declared: Int?)?
    /// Set when the answers in flight together went past the loop's budget.
    private var inFlightOverflow = false

    init(_ request: HTTPRequest, timeout: TimeInterval, budget: ReceiveBudget) throws {
        self.budget = budget
        guard let easy = ccurl_easy_init() else { throw HTTPTransportError.unreachable("libcurl could not start a request") }
        self.easy = easy
        maximumBodyBytes = max(0, request.maximumBodyBytes)
        errorBuffer.initialize(to: 0)
        let context = Unmanaged.passUnretained(self).toOpaque()
        var failed: Int32 = 0
        func set(_ option: CurlOption, _ value: Int) { failed |= ccurl_easy_setopt_long(easy, option.rawValue, value) }
        func set(_ option: CurlOption, _ text: String) {
            // libcurl copies every string option it is given.
            failed |= text.withCString { ccurl_easy_setopt_pointer(easy, option.rawValue, $0) }
        }
        set(.url, request.url.absoluteString)
        // Not known to libcurl before 7.85, where nothing follows a redirect anyway.
        _ = "http,https".withCString { ccurl_easy_setopt_pointer(easy, CurlOption.protocols.rawValue, $0) }
        set(.noSignal, 1)
        set(.followLocation, 0)
        set(.timeoutMilliseconds, max(1, Int((timeout * 1000).rounded(.up))))
        set(.tcpKeepAlive, 1)
        // Whatever compression libcurl can undo (gzip, deflate, ...); the body is handed over
        // decompressed.
        set(.acceptEncoding, "")
        failed |= ccurl_easy_setopt_pointer(easy, CurlOption.errorBuffer.rawValue, errorBuffer)
        failed |= ccurl_easy_setopt_pointer(easy, CurlOption.privateData.rawValue, context)
        failed |= ccurl_easy_setopt_callback(easy, CurlOption.writeFunction.rawValue, curlReceivedBody)
        failed |= ccurl_easy_setopt_pointer(easy, CurlOption.writeData.rawValue, context)
        failed |= ccurl_easy_setopt_callback(easy, CurlOption.headerFunction.rawValue, curlReceivedHeader)
        failed |= ccurl_easy_setopt_pointer(easy, CurlOption.headerData.rawValue, context)
        if request.freshConnection {
            set(.freshConnect, 1)
            set(.forbidReuse, 1)
        }
        switch (request.method, request.body) {
        case ("GET", nil): set(.httpGet, 1)
        case ("HEAD", nil): set(.noBody, 1)
        case ("POST", _): set(.post, 1)
        default: set(.customRequest, request.method)
        }
        // A POST always has its body set, even an empty one: without it libcurl would read one
        // from standard input.
        if let body = request.body ?? (request.method == "POST" ? Data() : nil) {
            failed |= ccurl_easy_setopt_offset(easy, CurlOption.postFieldSize.rawValue, Int64(body.count))
            failed |= body.withUnsafeBytes { bytes in
                // Copied by libcurl, so the request's body need not outlive this call.
                ccurl_easy_setopt_pointer(
                    easy, CurlOption.copyPostFields.rawValue, bytes.baseAddress ?? UnsafeRawPointer(errorBuffer))
            }
        }
        // No `Expect: 100-continue` round trip before a body.
        var lines = ["Expect:"]
        if request.freshConnection { lines.append("Connection: close") }
        for (name, value) in request.headers.sorted(by: { $0.key < $1.key }) {
            lines.append(value.isEmpty ? "\(name);" : "\(name): \(value)")
        }
        for line in lines { headerList = ccurl_slist_append(headerList, line) }
        failed |= ccurl_easy_setopt_pointer(easy, CurlOption.httpHeader.rawValue, UnsafeRawPointer(headerList))
        guard failed == 0 else { throw HTTPTransportError.unreachable("libcurl refused the request's options") }
    }

    deinit {
        ccurl_easy_cleanup(easy)
        ccurl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    /// Keeps the bytes, or returns false (which stops the transfer) when they would take the
    /// body past its bound.
    func received(body bytes: UnsafeRawBufferPointer) -> Bool {
        guard body.count + bytes.count <= maximumBodyBytes else {
            overflow = (maximumBodyBytes, overflow?.declared)
            return false
        }
        guard budget.take(bytes.count) else {
            inFlightOverflow = true
            return false
        }
        body.append(bytes.assumingMemoryBound(to: UInt8.self))
        return true
    }

    /// Keeps a header line, or returns false (which stops the transfer) when the headers grow
    /// past `maximumHeaderBytes` or declare a body longer than the request's bound.
    func received(headerLine bytes: UnsafeRawBufferPointer) -> Bool {
        headerBytes += bytes.count
        guard headerBytes <= HTTPTransportError.maximumHeaderBytes else {
            overflow = (HTTPTransportError.maximumHeaderBytes, nil)
            return false
        }
        let line = String(decoding: bytes, as: UTF8.self)
        // A status line starts the headers of an answer: a `100 Continue` has its own.
        if line.hasPrefix("HTTP/") {
            headers = [:]
            return true
        }
        guard let colon = line.firstIndex(of: ":") else { return true }
        let name = line[..<colon].lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
        if name == "content-length", let length = Int(value), length > maximumBodyBytes {
            overflow = (maximumBodyBytes, length)
            return false
        }
        if let earlier = headers[name] {
            headers[name] = "\(earlier), \(value)"
        } else {
            headers[name] = value
            if name == "content-length", let length = Int(value), length > 0 {
                body.reserveCapacity(length)
            }
        }
        return true
    }

    /// Hands the caller its answer, or why there is none. Called once, by the loop.
    func finish(code: Int32) {
        guard code == 0 else {
            finish(.failure(error(code)))
            return
        }
        var status = 0
        _ = ccurl_easy_getinfo_long(easy, CurlInfo.responseCode, &status)
        finish(.success(HTTPResponse(status: status, headers: headers, body: body)))
    }

    func finish(_ result: Result<HTTPResponse, any Error>) {
        budget.give(body.count)
        continuation?.resume(with: result)
        continuation = nil
    }

    private func error(_ code: Int32) -> HTTPTransportError {
        if let overflow { return .answerTooLarge(limit: overflow.limit, declared: overflow.declared) }
        if inFlightOverflow { return .answersInFlightTooLarge(limit: budget.limit) }
        let detail = errorBuffer.pointee != 0 ? String(cString: errorBuffer) : String(cString: ccurl_easy_strerror(code))
        switch code {
        case 28: return .timedOut
        // Unsupported protocol, a malformed URL, the proxy or the host not found, no connection,
        // the TLS handshake or the certificate refused: nothing was sent.
        case 1, 3, 5, 6, 7, 35, 60: return .unreachable(detail)
        default: return .connectionLost(detail)
        }
    }
}

/// The thread that drives every transfer of one transport: libcurl's multi handle is used by
/// this thread alone; other threads hand it transfers and cancellations under `lock` and wake
/// it.
private final class CurlLoop: @unchecked Sendable {
    /// The bytes its transfers are receiving, together; only the loop's thread touches it.
    let budget = ReceiveBudget(limit: HTTPTransportError.maximumBytesInFlight)
    private let multi: OpaquePointer
    private let lock = NSLock()
    // Guarded by `lock`.
    private var incoming: [CurlTransfer] = []
    private var cancellations: [CurlTransfer] = []
    private var stopping = false
    /// The loop thread's own.
    private var active: [OpaquePointer: CurlTransfer] = [:]

    init(connections: Int) throws {
        guard let multi = ccurl_multi_init() else { throw HTTPTransportError.unreachable("libcurl could not start") }
        self.multi = multi
        // One host (Intercom's region) at a time: at most `connections` open to it, as many
        // kept alive between requests, and requests beyond them queued inside libcurl.
        _ = ccurl_multi_setopt_long(multi, CurlMultiOption.maxHostConnections, connections)
        _ = ccurl_multi_setopt_long(multi, CurlMultiOption.maxConnects, connections)
        let thread = Thread { [self] in run() }
        thread.name = "intercom-sync http"
        thread.start()
    }

    func submit(_ transfer: CurlTransfer) {
        lock.withLock { incoming.append(transfer) }
        _ = ccurl_multi_wakeup(multi)
    }

    func cancel(_ transfer: CurlTransfer) {
        lock.withLock {
            transfer.cancelled = true
            cancellations.append(transfer)
        }
        _ = ccurl_multi_wakeup(multi)
    }

    /// Ends the thread once no transfer is left; the transport is gone, so none can come.
    func stop() {
        lock.withLock { stopping = true }
        _ = ccurl_multi_wakeup(multi)
    }

    private func run() {
        while true {
            // A transfer cancelled before the loop took it is never started.
            let (added, dropped, stop) = lock.withLock {
                defer {
                    incoming.removeAll(keepingCapacity: true)
                    cancellations.removeAll(keepingCapacity: true)
                }
                return (incoming.map { ($0, $0.cancelled) }, cancellations, stopping)
            }
            for (transfer, cancelledEarly) in added {
                if cancelledEarly {
                    transfer.finish(.failure(CancellationError()))
                } else if ccurl_multi_add_handle(multi, transfer.easy) != 0 {
                    transfer.finish(.failure(HTTPTransportError.unreachable("libcurl could not take the request")))
                } else {
                    active[transfer.easy] = transfer
                }
            }
            for transfer in dropped where active.removeValue(forKey: transfer.easy) != nil {
                _ = ccurl_multi_remove_handle(multi, transfer.easy)
                transfer.finish(.failure(CancellationError()))
            }
            if stop && active.isEmpty { break }
            var running: Int32 = 0
            _ = ccurl_multi_perform(multi, &running)
            var easy: OpaquePointer?
            var code: Int32 = 0
            while ccurl_multi_next_done(multi, &easy, &code) == 1 {
                guard let easy, let transfer = active.removeValue(forKey: easy) else { continue }
                _ = ccurl_multi_remove_handle(multi, easy)
                transfer.finish(code: code)
            }
            // Until a socket has something, a transfer's timer is due, or a wakeup.
            _ = ccurl_multi_poll(multi, 1000)
        }
        _ = ccurl_multi_cleanup(multi)
    }
}

/// The bytes a loop's transfers hold while they receive, against a limit. Used by the loop's
/// thread alone (libcurl calls the write callbacks there), so it needs no lock.
private final class ReceiveBudget: @unchecked Sendable {
    let limit: Int
    private var held = 0

    init(limit: Int) {
        self.limit = limit
    }

    /// Takes `count` bytes, or returns false when they would go past the limit.
    func take(_ count: Int) -> Bool {
        guard held + count <= limit else { return false }
        held += count
        return true
    }

    func give(_ count: Int) {
        held = max(0, held - count)
    }
}

// libcurl's callbacks, which must be plain C functions: each hands its bytes to the transfer
// named by the context pointer.
private func curlReceivedBody(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?
) -> Int {
    deliver(data, size * count, context) { $0.received(body: $1) }
}

private func curlReceivedHeader(
    _ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ context: UnsafeMutableRawPointer?
) -> Int {
    deliver(data, size * count, context) { $0.received(headerLine: $1) }
}

private func deliver(
    _ data: UnsafeMutablePointer<CChar>?, _ length: Int, _ context: UnsafeMutableRawPointer?,
    to receive: (CurlTransfer, UnsafeRawBufferPointer) -> Bool
) -> Int {
    guard let data, let context else { return 0 }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(context).takeUnretainedValue()
    // Any count but `length` makes libcurl stop the transfer with CURLE_WRITE_ERROR.
    return receive(transfer, UnsafeRawBufferPointer(start: data, count: length)) ? length : 0
}

/// The libcurl options the transport sets, by their numbers in libcurl's ABI (curl.h), which
/// libcurl never renumbers.
private enum CurlOption: Int32 {
    case noBody = 44
    case post = 47
    case followLocation = 52
    case freshConnect = 74
    case forbidReuse = 75
    case httpGet = 80
    case noSignal = 99
    case timeoutMilliseconds = 155
    case tcpKeepAlive = 213
    case writeData = 10001
    case url = 10002
    case errorBuffer = 10010
    case httpHeader = 10023
    case headerData = 10029
    case customRequest = 10036
    case acceptEncoding = 10102
    case privateData = 10103
    case copyPostFields = 10165
    case protocols = 10318
    case writeFunction = 20011
    case headerFunction = 20079
    case postFieldSize = 30120
}

private enum CurlInfo {
    static let responseCode: Int32 = 0x20_0002
}

private enum CurlMultiOption {
    static let maxConnects: Int32 = 6
    static let maxHostConnections: Int32 = 7
}
