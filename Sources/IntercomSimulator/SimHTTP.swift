import Foundation
import IntercomJSON

/// A request as the simulator's API logic sees it, free of any HTTP server type.
public struct SimRequest: Sendable {
    public var method: String
    public var path: String
    public var query: [String: String]
    /// Header names in lower case.
    public var headers: [String: String]
    public var body: [UInt8]

    public init(
        method: String, path: String, query: [String: String] = [:], headers: [String: String] = [:], body: [UInt8] = []
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers.reduce(into: [:]) { $0[$1.key.lowercased()] = $1.value }
        self.body = body
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// An answer from the simulator's API logic.
public struct SimResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)] = []
    public var body: String

    public init(status: Int, headers: [(String, String)] = [], body: String) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    static func json(_ body: String, status: Int = 200) -> SimResponse {
        SimResponse(status: status, headers: [("Content-Type", "application/json; charset=utf-8")], body: body)
    }

    static func json(_ value: JSONValue, status: Int = 200) -> SimResponse {
        json(value.jsonText, status: status)
    }
}

/// An Intercom error answer: `{"type":"error.list","request_id":…,"errors":[{code, message}]}`.
struct APIError: Error {
    var status: Int
    var code: String
    var message: String
    var field: String?
    var headers: [(String, String)] = []

    init(_ status: Int, _ code: String, _ message: String, field: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
    }

    func response(requestID: String) -> SimResponse {
        var error: [String: JSONValue] = ["code": .string(code), "message": .string(message)]
        if let field { error["field"] = .string(field) }
        let body: JSONValue = .object([
            "type": "error.list", "request_id": .string(requestID), "errors": .array([.object(error)]),
        ])
        var response = SimResponse.json(body, status: status)
        response.headers += headers
        return response
    }

    static func notFound(_ message: String = "User Not Found") -> APIError { APIError(404, "not_found", message) }
    static func invalid(_ message: String, field: String? = nil) -> APIError {
        APIError(400, "parameter_invalid", message, field: field)
    }
}

extension JSONValue {
    static func optional(_ text: String?) -> JSONValue { text.map(JSONValue.string) ?? .null }
    static func optional(_ number: Int?) -> JSONValue { number.map { .int(Int64($0)) } ?? .null }
}
