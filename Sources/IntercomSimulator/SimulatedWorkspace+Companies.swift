import Foundation
import IntercomJSON

/// A company of the workspace.
struct SimCompany: Sendable {
    var id: String
    /// The id the workspace gave it (`company_id`), unique, never changed.
    var companyID: String
    var name: String?
    var plan: String?
    var size: Int?
    var website: String?
    var industry: String?
    var monthlySpend: Int = 0
    var customAttributes: [String: JSONValue] = [:]
    var remoteCreatedAt: Int?
    var createdAt: Int
    var updatedAt: Int
}

/// Companies: `POST /companies` (create, or update by `company_id`), one company
/// (`GET`, `PUT`, `DELETE /companies/{id}`, its contacts at `/companies/{id}/contacts`), the
/// list (`GET /companies` with filters, `POST /companies/list` by page, `GET /companies/scroll`),
/// and a contact's companies (`GET` and `POST /contacts/{id}/companies`,
/// `DELETE /contacts/{id}/companies/{company_id}`).
///
/// Attaching or detaching a contact changes it, as a tagging does. A contact's body lists 10
/// of its companies, with `total_count` and `has_more`.
extension SimulatedWorkspace {
    static let companiesInABody = 10
    /// Companies a page, when the request does not say (`GET /companies`, `POST /companies/list`
    /// and the scroll).
    static let companiesAPage = 15

    func companyJSON(_ company: SimCompany) -> JSONValue {
        var plan: JSONValue = .object([:])
        if let name = company.plan {
            // A stable id from the name (FNV-1a), as a plan's id does not change.
            let id = name.utf8.reduce(UInt32(2_166_136_261)) { ($0 ^ UInt32($1)) &* 16_777_619 } % 1_000_000
            plan = .object(["type": "plan", "id": .string(String(id)), "name": .string(name)])
        }
        var fields: [String: JSONValue] = [
            "type": "company", "id": .string(company.id), "company_id": .string(company.companyID),
            "app_id": .string(configuration.workspaceID), "plan": plan, "created_at": .int(Int64(company.createdAt)),
            "updated_at": .int(Int64(company.updatedAt)), "monthly_spend": .int(Int64(company.monthlySpend)),
            "session_count": 0, "user_count": .int(Int64(companyContacts[company.id]?.count ?? 0)),
            "custom_attributes": .object(company.customAttributes),
            "tags": .object(["type": "tag.list", "tags": .array([])]),
            "segments": .object(["type": "segment.list", "segments": .array([])]),
        ]
        // Fields the company lacks are left out: the 2.16 schema allows none of them null.
        if let name = company.name { fields["name"] = .string(name) }
        if let created = company.remoteCreatedAt { fields["remote_created_at"] = .int(Int64(created)) }
        if let size = company.size { fields["size"] = .int(Int64(size)) }
        if let website = company.website { fields["website"] = .string(website) }
        if let industry = company.industry { fields["industry"] = .string(industry) }
        return .object(fields)
    }

    private func company(_ id: String) throws -> SimCompany {
        guard let company = companies[id] else { throw APIError(404, "company_not_found", "Company Not Found") }
        return company
    }

    /// A page of companies as Intercom's lists have them: `pages` by number, `total_count`.
    private func companyPage(_ ids: [String], query: [String: String], defaultPerPage: Int = companiesAPage) throws
        -> JSONValue
    {
        let perPage = min(try perPage(query["per_page"].map(JSONValue.string), default: defaultPerPage), 60)
        let page = max(1, query["page"].flatMap { Int($0) } ?? 1)
        let totalPages = max(1, (ids.count + perPage - 1) / perPage)
        let slice = ids.dropFirst((page - 1) * perPage).prefix(perPage)
        return .object([
            "type": "list", "data": .array(slice.compactMap { companies[$0] }.map(companyJSON)),
            "total_count": .int(Int64(ids.count)),
            "pages": .object([
                "type": "pages", "page": .int(Int64(page)), "per_page": .int(Int64(perPage)),
                // An object, as the 2.16 schema's `cursor_pages` has it; the page to ask next.
                "total_pages": .int(Int64(totalPages)),
                "next": page < totalPages ? .object(["page": .int(Int64(page + 1)), "per_page": .int(Int64(perPage))]) : .null,
            ]),
        ])
    }

    /// `POST /companies`: makes the company of that `company_id`, or updates it.
    func createOrUpdateCompany(_ call: SimCall) throws -> SimResponse {
        let body = try call.jsonBody()
        guard let companyID = body["company_id"]?.string ?? body["company_id"]?.int.map(String.init), !companyID.isEmpty
        else { throw APIError(400, "parameter_not_found", "company_id not specified") }
        if let id = byCompanyID[companyID] {
            return .json(companyJSON(try update(company: id, with: body)))
        }
        nextCompanySerial += 1
        let stamp = String(UInt32(truncatingIfNeeded: clock.now), radix: 16)
        let serial = String(nextCompanySerial, radix: 16)
        let id =
            String(repeating: "0", count: max(0, 8 - stamp.count)) + stamp + "c"
            + String(repeating: "0", count: max(0, 15 - serial.count)) + serial
        let company = SimCompany(id: id, companyID: companyID, createdAt: clock.now, updatedAt: clock.now)
        companies[id] = company
        companyOrder.append(id)
        byCompanyID[companyID] = id
        return .json(companyJSON(try update(company: id, with: body)))
    }

    private func update(company id: String, with body: JSONValue) throws -> SimCompany {
        var company = try company(id)
        if let name = body["name"]?.string { company.name = name }
        if let plan = body["plan"]?.string { company.plan = plan }
        if let size = body["size"]?.int { company.size = Int(size) }
        if let website = body["website"]?.string { company.website = website }
        if let industry = body["industry"]?.string { company.industry = industry }
        if let spend = body["monthly_spend"]?.int { company.monthlySpend = Int(spend) }
        if let created = body["remote_created_at"]?.int { company.remoteCreatedAt = Int(created) }
        if case .object(let attributes)? = body["custom_attributes"] {
            company.customAttributes.merge(attributes) { $1 }
        }
        company.updatedAt = max(clock.now, company.updatedAt)
        companies[id] = company
        return company
    }

    func findCompany(_ call: SimCall) throws -> SimResponse {
        .json(companyJSON(try company(call.parameter("id"))))
    }

    func updateCompany(_ call: SimCall) throws -> SimResponse {
        .json(companyJSON(try update(company: call.parameter("id"), with: try call.jsonBody())))
    }

    func deleteCompany(_ call: SimCall) throws -> SimResponse {
        let company = try company(call.parameter("id"))
        remove(company)
        return .json(.object(["id": .string(company.id), "object": "company", "deleted": true]))
    }

    /// Deletes the company: its contacts lose it (their bodies change, not their `updated_at`).
    private func remove(_ company: SimCompany) {
        companies[company.id] = nil
        companyOrder.removeAll { $0 == company.id }
        byCompanyID[company.companyID] = nil
        for contactID in companyContacts.removeValue(forKey: company.id) ?? [] {
            contacts[contactID]?.companyIDs.removeAll { $0 == company.id }
            contacts[contactID]?.revision += 1
        }
        searchRevision &+= 1
    }

    /// `GET /companies`: by `company_id` or `name` (one company, or 404), else by `tag_id` or
    /// `segment_id` (none carry either here), else every company, a page at a time.
    func retrieveCompanies(_ call: SimCall) throws -> SimResponse {
        let query = call.request.query
        if let companyID = query["company_id"] {
            guard let id = byCompanyID[companyID] else { throw APIError(404, "company_not_found", "Company Not Found") }
            return .json(try companyPage([id], query: query))
        }
        if let name = query["name"] {
            let ids = companyOrder.filter { companies[$0]?.name == name }
            guard !ids.isEmpty else { throw APIError(404, "company_not_found", "Company Not Found") }
            return .json(try companyPage(ids, query: query))
        }
        if query["tag_id"] != nil || query["segment_id"] != nil { return .json(try companyPage([], query: query)) }
        return .json(try companyPage(companyOrder, query: query))
    }

    /// `POST /companies/list`: the companies that have contacts, by page, newest first
    /// (`order=asc`: oldest). As Intercom's, it leaves out a company no contact belongs to;
    /// the scroll has them all.
    func listCompanies(_ call: SimCall) throws -> SimResponse {
        let withContacts = companyOrder.filter { !(companyContacts[$0]?.isEmpty ?? true) }
        let ids = call.request.query["order"] == "asc" ? withContacts : withContacts.reversed()
        return .json(try companyPage(ids, query: call.request.query))
    }

    /// `GET /companies/scroll`: a page and the `scroll_param` of the next; a page with no
    /// companies ends the scroll. An unknown `scroll_param` is a 400.
    func scrollCompanies(_ call: SimCall) throws -> SimResponse {
        var position = 0
        if let param = call.request.query["scroll_param"] {
            guard let found = companyScrolls[param] else {
                throw APIError(400, "scroll_exists", "scroll_param is invalid or has expired")
            }
            position = found
        }
        let ids = companyOrder.dropFirst(position).prefix(Self.companiesAPage)
        var fields: [String: JSONValue] = [
            "type": "list", "data": .array(ids.compactMap { companies[$0] }.map(companyJSON)), "pages": .null,
            "total_count": .null,
        ]
        if !ids.isEmpty {
            nextCompanySerial += 1
            let param = "sim-scroll-\(configuration.seed)-\(nextCompanySerial)"
            companyScrolls[param] = position + ids.count
            fields["scroll_param"] = .string(param)
        }
        return .json(.object(fields))
    }

    func companyContactsList(_ call: SimCall) throws -> SimResponse {
        let company = try company(call.parameter("id"))
        let ids = (companyContacts[company.id] ?? []).compactMap(live).sorted { $0.sequence < $1.sequence }
        let data = ids.prefix(50).map { (try? JSONValue(jsonText: render($0, version: call.version))) ?? .null }
        return .json(
            .object([
                "type": "list", "data": .array(data), "total_count": .int(Int64(ids.count)),
                "pages": .object([
                    "type": "pages", "page": 1, "per_page": 50, "total_pages": .int(Int64(max(1, (ids.count + 49) / 50))),
                ]),
            ]))
    }

    /// `GET /contacts/{id}/companies`: under `companies`, as the 2.16 schema and Intercom's SDK
    /// have it (the file's example says `data`), 50 a page.
    func contactCompanies(_ call: SimCall) throws -> SimResponse {
        guard let contact = live(call.parameter("id")) else { throw APIError.notFound() }
        let page = max(1, call.request.query["page"].flatMap { Int($0) } ?? 1)
        let perPage = max(1, min(call.request.query["per_page"].flatMap { Int($0) } ?? 50, 150))
        let all = contact.companyIDs.compactMap { companies[$0] }
        let data = all.dropFirst((page - 1) * perPage).prefix(perPage).map(companyJSON)
        let totalPages = max(1, (all.count + perPage - 1) / perPage)
        let next: JSONValue = page < totalPages ? .string("/contacts/\(contact.id)/companies?page=\(page + 1)") : .null
        return .json(
            .object([
                "type": "list", "companies": .array(data), "total_count": .int(Int64(all.count)),
                "pages": .object([
                    "type": "pages", "next": next, "page": .int(Int64(page)), "per_page": .int(Int64(perPage)),
                    "total_pages": .int(Int64(totalPages)),
                ]),
            ]))
    }

    /// `POST /contacts/{id}/companies` with `{"id": company id}`.
    func attachCompany(_ call: SimCall) throws -> SimResponse {
        let contactID = call.parameter("id")
        guard live(contactID) != nil else { throw APIError.notFound() }
        let body = try call.jsonBody()
        guard let companyID = body["id"]?.string else { throw APIError(400, "parameter_not_found", "company not specified") }
        let company = try company(companyID)
        _ = attach(company: company.id, to: contactID)
        return .json(companyJSON(company))
    }

    func detachCompany(_ call: SimCall) throws -> SimResponse {
        let contactID = call.parameter("id")
        guard live(contactID) != nil else { throw APIError.notFound() }
        let company = try company(call.parameter("company_id"))
        _ = detach(company: company.id, from: contactID)
        return .json(companyJSON(company))
    }

    // MARK: The workspace's side

    func attach(company id: String, to contactID: String) -> Bool {
        guard var contact = contacts[contactID], !contact.companyIDs.contains(id) else { return false }
        contact.companyIDs.append(id)
        companyContacts[id, default: []].insert(contactID)
        relationsChanged(&contact)
        return true
    }

    func detach(company id: String, from contactID: String) -> Bool {
        guard var contact = contacts[contactID], contact.companyIDs.contains(id) else { return false }
        contact.companyIDs.removeAll { $0 == id }
        companyContacts[id]?.remove(contactID)
        relationsChanged(&contact)
        return true
    }

    // MARK: In-process control (also `POST /_sim/contacts/{id}/companies`)

    /// Attaches a contact to the company of that `company_id`, making it (named `name`) when
    /// there is none. Returns the company's Intercom id.
    @discardableResult
    public func attach(contact id: String, companyID: String, name: String? = nil) throws -> String {
        guard contacts[id] != nil else { throw SimulatorError("no contact \(id)") }
        if byCompanyID[companyID] == nil {
            var fields: [String: JSONValue] = ["company_id": .string(companyID)]
            if let name { fields["name"] = .string(name) }
            let call = SimCall(
                request: SimRequest(
                    method: "POST", path: "/companies", headers: ["Content-Type": "application/json"],
                    body: Array(JSONValue.object(fields).jsonText.utf8)),
                parameters: .init(), version: APIVersion(raw: configuration.defaultVersion), requestID: "control")
            _ = try createOrUpdateCompany(call)
        }
        let company = byCompanyID[companyID]!
        _ = attach(company: company, to: id)
        return company
    }

    /// Deletes the company of that `company_id`, as `DELETE /companies/{id}` does.
    public func deleteCompany(companyID: String) throws {
        guard let id = byCompanyID[companyID], let company = companies[id] else {
            throw SimulatorError("no company \(companyID)")
        }
        remove(company)
    }

    /// The Intercom id of the company with that `company_id`.
    public func companyID(of companyID: String) -> String? { byCompanyID[companyID] }

    public func detach(contact id: String, companyID: String) throws {
        guard contacts[id] != nil, let company = byCompanyID[companyID] else {
            throw SimulatorError("no contact \(id) or no company \(companyID)")
        }
        _ = detach(company: company, from: id)
    }
}
