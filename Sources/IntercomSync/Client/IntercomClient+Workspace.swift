import Foundation
import IntercomJSON

extension IntercomClient {
    /// Asks `GET /me` which workspace the server is (`app.id_code`), for `ContactMirror.bind`.
    func workspaceIdentity() async throws -> WorkspaceIdentity {
        let me = try await sendJSON("GET", "/me", maximumBodyBytes: HTTPRequest.maximumObjectBytes)
        let admin = try? JSONValue(jsonText: me.text)
        guard let id = admin?["app"]?["id_code"]?.string, !id.isEmpty else {
            throw IntercomError(
                kind: .permanent, status: me.response.status, code: "malformed_response",
                message: "GET /me did not name a workspace (app.id_code): is this Intercom's API?",
                operation: "GET /me")
        }
        return WorkspaceIdentity(
            binding: WorkspaceBinding(workspaceID: id, origin: WorkspaceBinding.origin(of: connection.baseURL)),
            adminID: admin?["id"]?.string ?? admin?["id"]?.int.map(String.init),
            timezone: admin?["app"]?["timezone"]?.string)
    }
}
