import Foundation
import IntercomJSON

/// `GET /me` and `GET /admins`.
extension SimulatedWorkspace {

    func adminJSON(_ admin: (id: String, name: String, email: String)) -> [String: JSONValue] {
        [
            "type": "admin", "id": .string(admin.id), "name": .string(admin.name), "email": .string(admin.email),
            "email_verified": true, "away_mode_enabled": false, "away_mode_reassign": false, "has_inbox_seat": true,
            "team_ids": .array([]), "job_title": .null, "avatar": .object(["type": "avatar", "image_url": .null]),
        ]
    }

    func me() -> JSONValue {
        var admin = adminJSON(Self.admins[0])
        admin["app"] = .object([
            "type": "app", "id_code": .string(configuration.workspaceID), "name": "Simulated workspace",
            "created_at": 1_700_000_000,
            "secure": false, "identity_verification": false, "timezone": .string(configuration.timezone), "region": "US",
        ])
        return .object(admin)
    }

    func adminList() -> JSONValue {
        .object(["type": "admin.list", "admins": .array(Self.admins.map { .object(adminJSON($0)) })])
    }
}
