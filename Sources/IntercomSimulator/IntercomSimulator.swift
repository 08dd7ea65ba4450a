import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// A running simulator: a `SimulatedWorkspace` served over HTTP on 127.0.0.1.
///
///     let simulator = try await IntercomSimulator.start(configuration)
///     print(simulator.baseURL)            // http://127.0.0.1:<port>
///     await simulator.workspace.exportContacts()
///     await simulator.stop()
public final class IntercomSimulator: Sendable {
    public let workspace: SimulatedWorkspace
    public let port: Int
    private let server: Task<Void, any Error>
    private let services: ServiceGroup

    public var baseURL: String { "http://127.0.0.1:\(port)" }
    public var accessToken: String { workspace.configuration.accessToken }

    private init(workspace: SimulatedWorkspace, port: Int, server: Task<Void, any Error>, services: ServiceGroup) {
        self.workspace = workspace
        self.port = port
        self.server = server
        self.services = services
    }

    /// Starts serving; returns once the port is bound.
    public static func start(_ configuration: SimulatorConfiguration = .init()) async throws -> IntercomSimulator {
        let workspace = SimulatedWorkspace(configuration: configuration)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "intercom-simulator")
        logger.logLevel = .critical
        let application = Application(
            responder: SimResponder(workspace: workspace),
            configuration: .init(
                address: .hostname("127.0.0.1", port: configuration.port), serverName: "intercom-sync-simulator"),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            },
            logger: logger
        )
        let services = ServiceGroup(configuration: .init(services: [application], logger: logger))
        let server = Task { try await services.run() }
        guard let port = await ports.first(where: { _ in true }), port > 0 else {
            server.cancel()
            _ = await server.result
            throw SimulatorError("the simulator could not listen on 127.0.0.1:\(configuration.port)")
        }
        return IntercomSimulator(workspace: workspace, port: port, server: server, services: services)
    }

    /// Stops serving and waits until the port is closed.
    ///
    /// The server shuts down gracefully: it stops accepting, answers what it was asked, and
    /// closes its connections. Cancelling it outright instead can bring the process down when
    /// a connection it accepted was not yet being served (NIO traps on the writer it drops).
    public func stop() async {
        Self.shutDown(services, server)
        _ = await server.result
    }

    /// Serves until the task running it is cancelled (then shuts down as ``stop()`` does) or
    /// the server fails.
    public func wait() async throws {
        let (services, server) = (services, server)
        try await withTaskCancellationHandler {
            try await server.value
        } onCancel: {
            Self.shutDown(services, server)
        }
    }

    /// Asks the server to shut down gracefully, and cancels it if it is still running five
    /// seconds later (a client holding a request open).
    private static func shutDown(_ services: ServiceGroup, _ server: Task<Void, any Error>) {
        Task {
            await services.triggerGracefulShutdown()
            try await Task.sleep(for: .seconds(5))
            server.cancel()
        }
    }
}

/// The server's request context: Hummingbird's basics plus the channel, so a "lost" answer can
/// close it.
struct SimServerContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Carries bytes between Hummingbird and the workspace's routes (`SimRoutes`), applying the
/// delays and lost answers they ask for.
struct SimResponder: HTTPResponder {
    let workspace: SimulatedWorkspace

    func respond(to request: Request, context: SimServerContext) async throws -> Response {
        var headers: [String: String] = [:]
        for field in request.headers {
            headers[field.name.canonicalName] = field.value
        }
        var query: [String: String] = [:]
        for (key, value) in request.uri.queryParameters {
            query[String(key)] = String(value).removingPercentEncoding ?? String(value)
        }
        let body = try await request.body.collect(upTo: 16 << 20)
        let simRequest = SimRequest(
            method: request.method.rawValue, path: request.uri.path, query: query, headers: headers,
            body: Array(body.readableBytesView))
        var response = await workspace.respond(to: request, as: simRequest, connection: context.channel)
        let delivery = Delivery(taking: &response.headers)
        if delivery.delayMilliseconds > 0 {
            try await Task.sleep(for: .milliseconds(delivery.delayMilliseconds))
        }
        if delivery.lost {
            let delay = await workspace.faults.lostResponseDelaySeconds
            try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
            try? await context.channel.close()
            throw CancellationError()
        }
        return response
    }
}
