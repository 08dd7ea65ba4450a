import Foundation
import IntercomJSON

extension IntercomError {
    /// Decodes Intercom's `{"type":"error.list","request_id":…,"errors":[{code,message}]}`.
    init(response: HTTPResponse, operation: String) {
        var code = "http_\(response.status)"
        var message = HTTPURLResponseStatus.text(response.status)
        var requestID: String?
        if let envelope = try? JSONValue(jsonText: String(decoding: response.body, as: UTF8.self)) {
            requestID = envelope["request_id"]?.string.map(Self.oneLine)
            if let first = envelope["errors"]?.elements.first {
                code = first["code"]?.string.map(Self.oneLine) ?? code
                message = first["message"]?.string.map(Self.oneLine) ?? message
            }
        }
        if (300..<400).contains(response.status) {
            code = "redirect_refused"
            message =
                "the server answered with a redirect (\(response.status)) to \(response.header("location") ?? "no location"); "
                + "Intercom's API does not redirect, and the engine never follows one, so the access token "
                + "goes to no other address"
        }
        self.init(
            kind: Self.classify(status: response.status, code: code), status: response.status, code: code,
            message: message, requestID: requestID, operation: operation, headers: response.headers)
    }
}
