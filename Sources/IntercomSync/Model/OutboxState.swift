/// Where an outbox entry stands.
public enum OutboxState: String, Sendable, Codable, CaseIterable {
    case pending
    case inFlight = "in_flight"
    case sent
    case failed
    case unknown
}
