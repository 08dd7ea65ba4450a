import Foundation
import IntercomJSON

/// OAuth's authorization code flow: `GET /oauth` approves and redirects with a code,
/// `POST /auth/eagle/token` trades the code, once, for a token.
extension SimulatedWorkspace {

    /// `GET /oauth`: the user approves at once; the answer redirects to `redirect_uri` with a
    /// code.
    func authorize(_ call: SimCall) -> SimResponse {
        let request = call.request
        let requestID = call.requestID
        guard request.query["client_id"] == configuration.clientID else {
            return APIError.invalid("Unknown client_id").response(requestID: requestID)
        }
        guard let redirect = request.query["redirect_uri"], var components = URLComponents(string: redirect) else {
            return APIError.invalid("redirect_uri is required").response(requestID: requestID)
        }
        var bytes: [UInt8] = []
        for _ in 0..<16 { bytes.append(UInt8(truncatingIfNeeded: random.next())) }
        let code = Data(bytes).base64EncodedString()  // 16 bytes: ends in "==", as Intercom codes may
        authorizationCodes[code] = "sim-oauth-" + bytes.map { String($0, radix: 16) }.joined()
        var items = components.queryItems ?? []
        items.append(URLQueryItem(name: "code", value: code))
        if let state = request.query["state"] { items.append(URLQueryItem(name: "state", value: state)) }
        components.percentEncodedQuery = items.map { "\(Self.formEncode($0.name))=\(Self.formEncode($0.value ?? ""))" }
            .joined(separator: "&")
        return SimResponse(status: 302, headers: [("Location", components.string ?? redirect)], body: "")
    }

    /// `POST /auth/eagle/token`: a code, once, for an access token.
    func exchangeCode(_ call: SimCall) -> SimResponse {
        let requestID = call.requestID
        let form = Self.formFields(call.request)
        guard form["client_id"] == configuration.clientID,
            form["client_secret"] == configuration.clientSecret, let code = form["code"],
            let token = authorizationCodes.removeValue(forKey: code)
        else {
            return APIError(401, "unauthorized", "Unauthorized Code").response(requestID: requestID)
        }
        tokens.insert(token)
        return .json(.object(["token_type": "Bearer", "token": .string(token), "access_token": .string(token)]))
    }

    static func formEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// Fields of a form-encoded (or JSON) body.
    static func formFields(_ request: SimRequest) -> [String: String] {
        if request.headers["content-type"]?.contains("json") == true,
            case .object(let fields)? = try? JSONValue(jsonText: request.bodyText)
        {
            return fields.compactMapValues(\.string)
        }
        var fields: [String: String] = [:]
        for pair in request.bodyText.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
            }
            fields[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        return fields
    }
}
