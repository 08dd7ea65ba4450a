import Foundation
import HTTPTypes
import Hummingbird
import IntercomJSON
import Logging
import NIOCore

/// Where each request is answered: every route of the simulator, and the middleware each
/// group of routes passes through, in one table.
///
/// Every request passes `RequestRecording` (its id, its connection, the request log) and
/// `IntercomErrors` (thrown errors as Intercom's error envelope). The API's routes also pass,
/// in this order, `FaultInjection` (latency, lost and truncated answers), `Authentication`
/// (the bearer token), `RateLimiting` (the window's budget and its headers), `ServerErrors`
/// (injected 5xx) and `APIVersionCheck` (`Intercom-Version`). The control API and OAuth pass
/// none of them.
enum SimRoutes {
    /// Built once: it holds no workspace (each request's context brings its own).
    static let responder = router().buildResponder()

    static func router() -> Router<SimRequestContext> {
        let router = Router(context: SimRequestContext.self)
        router.add(middleware: RequestRecording())
        router.add(middleware: IntercomErrors())

        // The control API (`SimulatedWorkspace+Control.swift`): no token, no budget, no faults.
        let control = router.group("_sim")
        for method in [HTTPRequest.Method.get, .post, .delete] {
            control.answer(method, "**") { workspace, call in workspace.control(call.request) }
        }

        // OAuth's authorization code flow (`SimulatedWorkspace+OAuth.swift`).
        router.answer(.get, "oauth") { workspace, call in workspace.authorize(call) }
        router.answer(.post, "auth/eagle/token") { workspace, call in workspace.exchangeCode(call) }

        let api = router.group()
            .add(middleware: FaultInjection())
            .add(middleware: Authentication())
            .add(middleware: RateLimiting())
            .add(middleware: ServerErrors())
            .add(middleware: APIVersionCheck())

        // Admins (`SimulatedWorkspace+Admins.swift`).
        api.answer(.get, "me") { workspace, _ in .json(workspace.me()) }
        api.answer(.get, "admins") { workspace, _ in .json(workspace.adminList()) }

        // Contacts (`SimulatedWorkspace+Contacts.swift`, search in `+Search.swift`, notes in `+Notes.swift`).
        let contacts = api.group("contacts")
        contacts.answer(.get, "") { workspace, call in .json(try workspace.list(call.request.query, version: call.version)) }
        contacts.answer(.post, "") { workspace, call in try workspace.createContact(call) }
        contacts.answer(.post, "search") { workspace, call in
            .json(try workspace.search(try call.jsonBody(), version: call.version))
        }
        contacts.answer(.post, "merge") { workspace, call in try workspace.mergeContacts(call) }
        contacts.answer(.get, ":id") { workspace, call in try workspace.getContact(call) }
        contacts.answer(.put, ":id") { workspace, call in try workspace.updateContact(call) }
        contacts.answer(.delete, ":id") { workspace, call in try workspace.deleteContact(call) }
        contacts.answer(.post, ":id/archive") { workspace, call in try workspace.archiveContact(call, archive: true) }
        contacts.answer(.post, ":id/unarchive") { workspace, call in try workspace.archiveContact(call, archive: false) }
        contacts.answer(.get, ":id/tags") { workspace, call in try workspace.contactTags(call) }
        contacts.answer(.post, ":id/tags") { workspace, call in try workspace.tagContact(call) }
        contacts.answer(.delete, ":id/tags/:tag_id") { workspace, call in try workspace.untagContact(call) }
        contacts.answer(.get, ":id/notes") { workspace, call in try workspace.contactNotes(call) }
        contacts.answer(.post, ":id/notes") { workspace, call in try workspace.createNote(call) }
        contacts.answer(.get, ":id/segments") { workspace, call in try workspace.contactSegments(call) }
        contacts.answer(.get, ":id/companies") { workspace, call in try workspace.contactCompanies(call) }
        contacts.answer(.post, ":id/companies") { workspace, call in try workspace.attachCompany(call) }
        contacts.answer(.delete, ":id/companies/:company_id") { workspace, call in try workspace.detachCompany(call) }

        // Tags (`SimulatedWorkspace+Tags.swift`).
        let tags = api.group("tags")
        tags.answer(.get, "") { workspace, _ in workspace.listTags() }
        tags.answer(.post, "") { workspace, call in try workspace.createOrUpdateTag(call) }
        tags.answer(.get, ":id") { workspace, call in try workspace.findTag(call) }
        tags.answer(.delete, ":id") { workspace, call in try workspace.deleteTag(call) }

        // Companies (`SimulatedWorkspace+Companies.swift`).
        let companies = api.group("companies")
        companies.answer(.get, "") { workspace, call in try workspace.retrieveCompanies(call) }
        companies.answer(.post, "") { workspace, call in try workspace.createOrUpdateCompany(call) }
        companies.answer(.post, "list") { workspace, call in try workspace.listCompanies(call) }
        companies.answer(.get, "scroll") { workspace, call in try workspace.scrollCompanies(call) }
        companies.answer(.get, ":id") { workspace, call in try workspace.findCompany(call) }
        companies.answer(.put, ":id") { workspace, call in try workspace.updateCompany(call) }
        companies.answer(.delete, ":id") { workspace, call in try workspace.deleteCompany(call) }
        companies.answer(.get, ":id/contacts") { workspace, call in try workspace.companyContactsList(call) }

        // Segments (`SimulatedWorkspace+Segments.swift`).
        api.answer(.get, "segments") { workspace, call in workspace.listSegments(call) }

        // Messages (`SimulatedWorkspace+Messages.swift`).
        api.answer(.post, "messages") { workspace, call in .json(try workspace.sendMessage(try call.jsonBody())) }

        // Anything else the API does not have, after the token and the budget, as Intercom.
        for method in [HTTPRequest.Method.get, .post, .put, .delete, .patch] {
            api.answer(method, "**") { _, _ in throw APIError(404, "not_found", "Resource Not Found") }
        }
        return router
    }
}

/// One API call as a route's handler sees it.
struct SimCall: Sendable {
    var request: SimRequest
    var parameters: Parameters
    var version: APIVersion
    var requestID: String

    /// A path parameter the route names (`:id`).
    func parameter(_ name: String) -> String { parameters.get(name) ?? "" }

    /// The body, which must be a JSON object sent as JSON.
    func jsonBody() throws -> JSONValue {
        guard let contentType = request.headers["content-type"], contentType.lowercased().contains("json") else {
            throw APIError(415, "unsupported_media_type", "Content-Type must be application/json")
        }
        guard let value = try? JSONValue(jsonText: request.bodyText), case .object = value else {
            throw APIError(400, "parameter_invalid", "The request body is not a valid JSON object")
        }
        return value
    }
}

/// What a request carries through the routes: the workspace that answers it, its connection,
/// the request as the workspace reads it, and what the middleware learned on the way.
struct SimRequestContext: RequestContext {
    typealias Source = SimContextSource
    var coreContext: CoreRequestContextStorage
    let workspace: SimulatedWorkspace
    /// None for a request handed in-process (`SimulatedWorkspace.handle`).
    let channel: (any Channel)?
    let request: SimRequest
    var requestID = ""
    /// Whether the fault plan covers this request.
    var faulty = false
    var version = APIVersion(raw: "2.16")

    init(source: SimContextSource) {
        coreContext = .init(source: source)
        workspace = source.workspace
        channel = source.channel
        request = source.request
    }

    func call() -> SimCall {
        SimCall(request: request, parameters: parameters, version: version, requestID: requestID)
    }
}

struct SimContextSource: RequestContextSource {
    let logger: Logger
    let workspace: SimulatedWorkspace
    let channel: (any Channel)?
    let request: SimRequest
}

/// The headers by which the routes tell the delivery what to do with an answer; never sent.
enum DeliveryHeader {
    static let lost = "x-sim-lost"
    static let delayMilliseconds = "x-sim-delay-ms"
    static let contacts = "x-sim-contacts"
}

/// What the routes asked of an answer's delivery, taken out of its headers.
struct Delivery {
    var lost = false
    var delayMilliseconds = 0

    init(taking headers: inout HTTPFields) {
        let names = [DeliveryHeader.lost, DeliveryHeader.delayMilliseconds, DeliveryHeader.contacts].map {
            HTTPField.Name($0)!
        }
        lost = headers[names[0]] != nil
        delayMilliseconds = headers[names[1]].flatMap { Int($0) } ?? 0
        for name in names { headers[name] = nil }
    }
}

extension RouterMethods where Context == SimRequestContext {
    /// Answers `method` at `path` with `body`, run on the workspace's actor in one turn.
    @discardableResult
    func answer(
        _ method: HTTPRequest.Method, _ path: RouterPath,
        _ body: @escaping @Sendable (isolated SimulatedWorkspace, SimCall) throws -> SimResponse
    ) -> Self {
        on(path, method: method) { _, context in
            try await context.workspace.answer(context.call(), body).hummingbird
        }
    }
}

extension SimulatedWorkspace {
    /// Runs a route's handler, noting how many contacts its answer carries (for
    /// `FaultPlan.perContactMicroseconds`).
    func answer(
        _ call: SimCall, _ body: @Sendable (isolated SimulatedWorkspace, SimCall) throws -> SimResponse
    ) throws -> SimResponse {
        contactsInAnswer = 0
        defer { contactsInAnswer = 0 }
        var response = try body(self, call)
        if contactsInAnswer > 0 { response.headers.append((DeliveryHeader.contacts, String(contactsInAnswer))) }
        return response
    }

    /// Answers one request through the routes, in-process: what the HTTP server sends, with
    /// the delay and loss it is to apply.
    nonisolated func handle(_ request: SimRequest, connection: (any Channel)? = nil) async -> Outcome {
        var fields = HTTPFields()
        for (name, value) in request.headers {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        let head = HTTPRequest(
            method: HTTPRequest.Method(request.method) ?? .get, scheme: "http", authority: "127.0.0.1",
            path: request.path, headerFields: fields)
        var response = await respond(
            to: Request(head: head, body: RequestBody(buffer: ByteBuffer(bytes: request.body))), as: request,
            connection: connection)
        let delivery = Delivery(taking: &response.headers)
        var outcome = Outcome(
            response: SimResponse(status: Int(response.status.code), body: ""),
            delayMilliseconds: delivery.delayMilliseconds, lost: delivery.lost)
        outcome.response.headers = response.headers.map { ($0.name.rawName, $0.value) }
        outcome.response.body = String(decoding: (try? await response.body.collected()) ?? [], as: UTF8.self)
        return outcome
    }

    /// Answers `request` (read as `simRequest`) through the routes, delivery headers included.
    nonisolated func respond(to request: Request, as simRequest: SimRequest, connection: (any Channel)?) async -> Response {
        let context = SimRequestContext(
            source: SimContextSource(logger: Self.quietLogger, workspace: self, channel: connection, request: simRequest))
        do {
            return try await SimRoutes.responder.respond(to: request, context: context)
        } catch {
            return SimResponse(status: 500, body: "\(error)").hummingbird
        }
    }

    private static let quietLogger: Logger = {
        var logger = Logger(label: "intercom-simulator")
        logger.logLevel = .critical
        return logger
    }()
}

extension SimResponse {
    var hummingbird: Response {
        var fields = HTTPFields()
        for (name, value) in headers {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        return Response(
            status: HTTPResponse.Status(code: status), headers: fields,
            body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}

extension ResponseBody {
    /// The whole body, for an answer the simulator made itself (a buffer or a few).
    func collected() async throws -> [UInt8] {
        let bytes = Bytes()
        try await write(Collector(bytes: bytes))
        return bytes.value
    }

    private final class Bytes: @unchecked Sendable {
        var value: [UInt8] = []
    }

    private struct Collector: ResponseBodyWriter {
        let bytes: Bytes

        mutating func write(_ buffer: ByteBuffer) async throws { bytes.value += buffer.readableBytesView }
        func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}
