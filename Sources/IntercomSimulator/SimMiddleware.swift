import HTTPTypes
import Hummingbird

/// Gives each request its id and records its connection, and logs each API request with the
/// status it got (`SimulatedWorkspace.requestLog`). Control requests are neither counted as
/// connections nor logged.
struct RequestRecording: RouterMiddleware {
    func handle(
        _ request: Request, context: SimRequestContext, next: (Request, SimRequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        let control = context.request.path.hasPrefix("/_sim/")
        context.requestID = await context.workspace.begin(connection: control ? nil : context.channel)
        let response = try await next(request, context)
        if !control {
            await context.workspace.logRequest(
                context.request, status: Int(response.status.code),
                lost: response.headers[HTTPField.Name(DeliveryHeader.lost)!] != nil,
                rateLimitReset: response.headers[HTTPField.Name("X-RateLimit-Reset")!].flatMap { Int($0) })
        }
        return response
    }
}

/// Turns what a route or a middleware throws into Intercom's error envelope
/// (`{"type":"error.list",…}`), with the request's id; a path the routes do not know is a 404.
struct IntercomErrors: RouterMiddleware {
    func handle(
        _ request: Request, context: SimRequestContext, next: (Request, SimRequestContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return Self.response(to: error, requestID: context.requestID).hummingbird
        }
    }

    static func response(to error: any Error, requestID: String) -> SimResponse {
        switch error {
        case let error as APIError: error.response(requestID: requestID)
        case let error as HTTPError where error.status == .notFound:
            APIError(404, "not_found", "Resource Not Found").response(requestID: requestID)
        default: APIError(500, "server_error", "\(error)").response(requestID: requestID)
        }
    }
}

/// The fault plan (`FaultPlan`) for the requests it covers: on the way in it marks them
/// (`SimRequestContext.faulty`, read by `RateLimiting` and `ServerErrors`); on the way out it
/// loses or truncates a successful answer and sets its delay (latency, jitter, and a cost per
/// contact carried).
struct FaultInjection: RouterMiddleware {
    func handle(
        _ request: Request, context: SimRequestContext, next: (Request, SimRequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        let workspace = context.workspace
        context.faulty = await workspace.isFaulty(context.request)
        guard context.faulty else { return try await next(request, context) }
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            // A refused token is delayed as any answer is.
            response = IntercomErrors.response(to: error, requestID: context.requestID).hummingbird
        }
        let contacts = response.headers[HTTPField.Name(DeliveryHeader.contacts)!].flatMap { Int($0) } ?? 0
        let fate = await workspace.fate(ofAnswerWithStatus: Int(response.status.code), contacts: contacts)
        if fate.lost {
            response.headers[HTTPField.Name(DeliveryHeader.lost)!] = "1"
        } else if fate.truncated {
            let bytes = try await response.body.collected()
            if bytes.count > 1 {
                response.body = ResponseBody(byteBuffer: ByteBuffer(bytes: bytes.prefix(bytes.count / 2)))
            }
        }
        if fate.delayMilliseconds > 0 {
            response.headers[HTTPField.Name(DeliveryHeader.delayMilliseconds)!] = String(fate.delayMilliseconds)
        }
        return response
    }
}

/// The bearer token: unknown or revoked tokens get Intercom's 401s.
struct Authentication: RouterMiddleware {
    func handle(
        _ request: Request, context: SimRequestContext, next: (Request, SimRequestContext) async throws -> Response
    ) async throws -> Response {
        if let refusal = await context.workspace.authenticationError(context.request) { throw refusal }
        return try await next(request, context)
    }
}

/// Spends one request of the window's budget and puts the `X-RateLimit-*` headers on every
/// answer past the token check, errors included; over the limit, or in an injected burst, the
/// answer is a 429.
struct RateLimiting: RouterMiddleware {
    func handle(
        _ request: Request, context: SimRequestContext, next: (Request, SimRequestContext) async throws -> Response
    ) async throws -> Response {
        let (limited, headers) = await context.workspace.spendBudget(faulty: context.faulty)
        var response: Response
        if let limited {
            response = limited.response(requestID: context.requestID).hummingbird
        } else {
            do {
                response = try await next(request, context)
            } catch {
                response = IntercomErrors.response(to: error, requestID: context.requestID).hummingbird
            }
        }
        for (name, value) in headers {
            response.headers[HTTPField.Name(name)!] = value
        }
        return response
    }
}

/// Injected 500, 502 and 503 answers, at the fault plan's rate.
struct ServerErrors: RouterMiddleware {
    func handle(
        _ request: Request, context: SimRequestContext, next: (Request, SimRequestContext) async throws -> Response
    ) async throws -> Response {
        if context.faulty, let status = await context.workspace.drawServerError() {
            throw APIError(status, status == 503 ? "service_unavailable" : "server_error", "Simulated server error")
        }
        return try await next(request, context)
    }
}

/// `Intercom-Version`: the version the answer is shaped for, and a 400 for one Intercom does
/// not have.
struct APIVersionCheck: RouterMiddleware {
    func handle(
        _ request: Request, context: SimRequestContext, next: (Request, SimRequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        let version = APIVersion(
            raw: context.request.headers["intercom-version"] ?? context.workspace.configuration.defaultVersion)
        guard APIVersion.known.contains(version.raw) else {
            throw APIError(400, "intercom_version_invalid", "The requested version \(version.raw) is not valid")
        }
        context.version = version
        return try await next(request, context)
    }
}
