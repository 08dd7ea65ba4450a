import IntercomJSON

/// The control API under `/_sim/`: no token, no rate limit, no faults. It changes the
/// workspace as time passes and exports what tests check.
///
///     GET    /_sim/state                    contacts, archived, deleted, merged, messages, now
///     GET    /_sim/log                      every API request: method, path, status, lost, time, rate_limit_reset
///     GET    /_sim/connections              {"connections": N}: the TCP connections API requests came on
///     POST   /_sim/contacts                 create a contact  {"email": …, …}
///     POST   /_sim/contacts/{id}            edit a contact (bumps updated_at)
///     DELETE /_sim/contacts/{id}            delete a contact
///     POST   /_sim/contacts/{id}/archive    archive (or …/unarchive)
///     POST   /_sim/contacts/{id}/tags       {"name": …}: tag it (the tag is made if new); DELETE untags
///     POST   /_sim/contacts/{id}/companies  {"company_id": …, "name": …}: attach (made if new); DELETE detaches
///     POST   /_sim/merge                    {"from": lead id, "into": user id}
///     POST   /_sim/edit-many                {"count": N, "spread_s": S, "seed": n}: N edited over the last S seconds
///     POST   /_sim/clock                    {"advance": seconds} or {"now": unix seconds}
///     POST   /_sim/faults                   a FaultPlan: {"server_error_rate": 0.1, "routes": ["POST /messages"], …}
///     POST   /_sim/revoke                   {"token": …}
extension SimulatedWorkspace {
    func control(_ request: SimRequest) -> SimResponse {
        let parts = request.path.split(separator: "/").dropFirst().map(String.init)
        let body = (try? JSONValue(jsonText: request.bodyText)) ?? .object([:])
        do {
            switch (request.method, parts.first, parts.count) {
            case ("GET", "state", 1):
                var text = #"{"contacts":["# + exportContacts().joined(separator: ",") + "],"
                text += #""archived":\#(JSONValue.array(archived.sorted().map(JSONValue.string)).jsonText),"#
                text += #""deleted":\#(JSONValue.array(deleted.sorted().map(JSONValue.string)).jsonText),"#
                text += #""merged":\#(JSONValue.object(merged.mapValues(JSONValue.string)).jsonText),"#
                text += #""messages":["# + sentMessages().joined(separator: ",") + "],"
                text += #""now":\#(clock.now)}"#
                return .json(text)
            case ("GET", "connections", 1):
                return .json(.object(["connections": .int(Int64(connectionCount()))]))
            case ("GET", "log", 1):
                let entries = log.map { entry -> JSONValue in
                    .object([
                        "method": .string(entry.method), "path": .string(entry.path), "status": .int(Int64(entry.status)),
                        "lost": .bool(entry.lost), "time": .int(Int64(entry.time)),
                        "rate_limit_reset": .optional(entry.rateLimitReset),
                    ])
                }
                return .json(.object(["requests": .array(entries)]))
            case ("POST", "contacts", 1):
                return .json(.object(["id": .string(try create(fieldsJSON: request.bodyText))]))
            case ("POST", "contacts", 2):
                try edit(id: parts[1], fieldsJSON: request.bodyText)
                return .json(.object(["ok": true]))
            case ("DELETE", "contacts", 2):
                try delete(id: parts[1])
                return .json(.object(["ok": true]))
            case ("POST", "contacts", 3) where parts[2] == "tags", ("DELETE", "contacts", 3) where parts[2] == "tags":
                guard let name = body["name"]?.string else { throw SimulatorError("send {\"name\": tag name}") }
                if request.method == "POST" {
                    return .json(.object(["id": .string(try tag(contact: parts[1], name: name))]))
                }
                try untag(contact: parts[1], name: name)
                return .json(.object(["ok": true]))
            case ("POST", "contacts", 3) where parts[2] == "companies", ("DELETE", "contacts", 3) where parts[2] == "companies":
                guard let companyID = body["company_id"]?.string else {
                    throw SimulatorError("send {\"company_id\": …, \"name\": …}")
                }
                if request.method == "POST" {
                    return .json(
                        .object(["id": .string(try attach(contact: parts[1], companyID: companyID, name: body["name"]?.string))]))
                }
                try detach(contact: parts[1], companyID: companyID)
                return .json(.object(["ok": true]))
            case ("POST", "contacts", 3) where parts[2] == "archive" || parts[2] == "unarchive":
                try archive(id: parts[1], parts[2] == "archive")
                return .json(.object(["ok": true]))
            case ("POST", "edit-many", 1):
                guard let count = body["count"]?.int else {
                    throw SimulatorError("send {\"count\": N, \"spread_s\": seconds, \"seed\": n}")
                }
                let edited = editMany(
                    count: count, spreadSeconds: body["spread_s"]?.int ?? 86_400,
                    seed: UInt64(max(0, body["seed"]?.int ?? 1)))
                return .json(.object(["edited": .int(Int64(edited))]))
            case ("POST", "merge", 1):
                guard let from = body["from"]?.string, let into = body["into"]?.string else {
                    throw SimulatorError("send {\"from\": …, \"into\": …}")
                }
                try merge(from: from, into: into)
                return .json(.object(["ok": true]))
            case ("POST", "clock", 1):
                if let seconds = body["advance"]?.int {
                    clock.advance(by: seconds)
                } else if let time = body["now"]?.int {
                    clock.set(time)
                } else {
                    throw SimulatorError("send {\"advance\": seconds} or {\"now\": unix seconds}")
                }
                return .json(.object(["now": .int(Int64(clock.now))]))
            case ("POST", "faults", 1):
                setFaults(try FaultPlan(json: body))
                return .json(.object(["ok": true]))
            case ("POST", "revoke", 1):
                guard let token = body["token"]?.string else { throw SimulatorError("send {\"token\": …}") }
                revoke(token: token)
                return .json(.object(["ok": true]))
            default:
                throw SimulatorError("no control endpoint \(request.method) \(request.path)")
            }
        } catch {
            return .json(.object(["error": .string("\(error)")]), status: 400)
        }
    }
}

extension FaultPlan {
    /// Reads a plan from JSON with snake_case keys; unknown keys are refused.
    init(json: JSONValue) throws {
        self.init()
        guard case .object(let fields) = json else { throw SimulatorError("a fault plan is a JSON object") }
        for (key, value) in fields {
            if key == "routes" {
                guard case .array(let items) = value, let routes = Optional(items.compactMap(\.string)),
                    routes.count == items.count
                else { throw SimulatorError("routes must be an array of \"METHOD /path\" strings") }
                self.routes = routes
                continue
            }
            let number: Double? =
                switch value {
                case .int(let integer): Double(integer)
                case .double(let real): real
                default: nil
                }
            guard let number else { throw SimulatorError("\(key) must be a number") }
            switch key {
            case "latency_ms": latencyMilliseconds = Int(number)
            case "jitter_ms": jitterMilliseconds = Int(number)
            case "per_contact_us": perContactMicroseconds = Int(number)
            case "server_error_rate": serverErrorRate = number
            case "rate_limit_burst_rate": rateLimitBurstRate = number
            case "rate_limit_burst_length": rateLimitBurstLength = Int(number)
            case "lost_response_rate": lostResponseRate = number
            case "lost_response_delay_s": lostResponseDelaySeconds = number
            case "truncated_body_rate": truncatedBodyRate = number
            case "seed": seed = UInt64(number)
            default: throw SimulatorError("unknown fault \(key)")
            }
        }
    }
}
