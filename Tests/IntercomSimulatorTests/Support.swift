import Foundation
import IntercomJSON
import Testing

@testable import IntercomSimulator

/// Drives a workspace in process, without HTTP.
struct Client {
    let workspace: SimulatedWorkspace
    var token = "sim-access-token"
    var version: String?

    init(_ configure: (inout SimulatorConfiguration) -> Void = { _ in }) {
        var configuration = SimulatorConfiguration()
        configuration.startTime = 1_767_225_600  // 2026-01-01T00:00:00Z
        configure(&configuration)
        workspace = SimulatedWorkspace(configuration: configuration)
    }

    @discardableResult
    func send(
        _ method: String, _ path: String, query: [String: String] = [:], json: String? = nil, headers: [String: String] = [:]
    )
        async -> SimResponse
    {
        var allHeaders = headers
        allHeaders["Authorization"] = allHeaders["Authorization"] ?? "Bearer \(token)"
        if let version { allHeaders["Intercom-Version"] = version }
        if json != nil { allHeaders["Content-Type"] = "application/json" }
        let request = SimRequest(method: method, path: path, query: query, headers: allHeaders, body: Array((json ?? "").utf8))
        return await workspace.handle(request).response
    }
}

extension SimResponse {
    var json: JSONValue { (try? JSONValue(jsonText: body)) ?? .null }
    var errorCode: String? {
        json["errors"].flatMap { if case .array(let items) = $0 { items.first?["code"]?.string } else { nil } }
    }
    var errorMessage: String? {
        json["errors"].flatMap { if case .array(let items) = $0 { items.first?["message"]?.string } else { nil } }
    }
}

extension JSONValue {
    var items: [JSONValue] { if case .array(let items) = self { items } else { [] } }
}
