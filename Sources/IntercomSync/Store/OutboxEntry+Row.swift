import Foundation
import GRDB

extension OutboxEntry: MirrorRow {
    static let columns = """
        seq, kind, contact_id, depends_on, payload, state, attempts, next_attempt_at, last_error_status, \
        last_error_code, last_error_message, last_error_request_id, remote_id, created_at, updated_at
        """

    init(row: Row) throws {
        let kindText: String = row[1]
        let stateText: String = row[5]
        guard let kind = Kind(rawValue: kindText), let state = OutboxState(rawValue: stateText) else {
            throw MirrorError(.corrupt, detail: "outbox entry \(row[0] as Int64) has kind \(kindText), state \(stateText)")
        }
        seq = row[0]
        self.kind = kind
        contactID = row[2]
        dependsOn = row[3]
        payload = row[4]
        self.state = state
        attempts = row[6]
        nextAttemptAt = row[7]
        if let code: String = row[9] {
            lastError = Failure(status: row[8], code: code, message: row[10] ?? "", requestID: row[11])
        }
        remoteID = row[12]
        createdAt = row[13]
        updatedAt = row[14]
    }
}
