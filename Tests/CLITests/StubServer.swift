import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An HTTP server on 127.0.0.1 that answers whatever its handler says: the misbehaving servers
/// that a simulator of Intercom should never be (one that redirects, one that answers an empty
/// walk for another workspace). It records every request it gets, with its Authorization header.
final class StubServer: Sendable {
    struct Answer: Sendable {
        var status: Int
        var headers: [String: String] = [:]
        var body: String = ""
    }

    struct Seen: Sendable {
        var method: String
        var path: String
        var authorization: String?
    }

    typealias Handler = @Sendable (_ method: String, _ path: String) -> Answer

    let port: Int
    private let server: Task<Void, any Error>
    private let services: ServiceGroup
    private let log: RequestLog

    var baseURL: String { "http://127.0.0.1:\(port)" }
    var requests: [Seen] { log.seen.withLock { $0 } }

    private init(port: Int, server: Task<Void, any Error>, services: ServiceGroup, log: RequestLog) {
        self.port = port
        self.server = server
        self.services = services
        self.log = log
    }

    static func start(_ handler: @escaping Handler) async throws -> StubServer {
        let log = RequestLog()
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "stub-server")
        logger.logLevel = .critical
        let application = Application(
            responder: Responder(handler: handler, log: log),
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "stub"),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: logger)
        let services = ServiceGroup(configuration: .init(services: [application], logger: logger))
        let server = Task { try await services.run() }
        guard let port = await ports.first(where: { _ in true }), port > 0 else {
            server.cancel()
            throw CocoaError(.fileNoSuchFile)
        }
        return StubServer(port: port, server: server, services: services, log: log)
    }

    /// Shuts the server down gracefully, as `IntercomSimulator.stop()` does and for its reason.
    func stop() async {
        await services.triggerGracefulShutdown()
        let server = server
        let deadline = Task {
            try await Task.sleep(for: .seconds(5))
            server.cancel()
        }
        _ = await server.result
        deadline.cancel()
    }

    private final class RequestLog: Sendable {
        let seen = Mutex<[Seen]>([])
    }

    private struct Responder: HTTPResponder {
        typealias Context = BasicRequestContext
        let handler: Handler
        let log: RequestLog

        func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
            let seen = Seen(
                method: request.method.rawValue, path: request.uri.path, authorization: request.headers[.authorization])
            log.seen.withLock { $0.append(seen) }
            let answer = handler(request.method.rawValue, request.uri.path)
            var fields = HTTPFields()
            for (name, value) in answer.headers {
                if let fieldName = HTTPField.Name(name) { fields.append(HTTPField(name: fieldName, value: value)) }
            }
            return Response(
                status: HTTPResponse.Status(code: answer.status), headers: fields,
                body: ResponseBody(byteBuffer: ByteBuffer(string: answer.body)))
        }
    }
}

/// A port on 127.0.0.1 that takes connections (the kernel completes them into its backlog) and
/// never answers: a server that hangs.
final class SilentServer: Sendable {
    let port: Int
    private let descriptor: Int32

    var baseURL: String { "http://127.0.0.1:\(port)" }

    init() throws {
        (descriptor, port) = try Self.listening()
    }

    /// A socket listening on 127.0.0.1 at a port of the system's choosing.
    static func listening() throws -> (descriptor: Int32, port: Int) {
        #if canImport(Glibc)
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(descriptor, 64) == 0 else {
            close(descriptor)
            throw CocoaError(.fileWriteUnknown)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
    }

    deinit {
        close(descriptor)
    }
}
