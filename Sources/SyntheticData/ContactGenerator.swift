/// Generates realistic, deterministic Intercom contacts for tests, benchmarks and the simulator.
///
/// Contact `i` depends only on the seed and `i`, so any slice of a data set can be produced
/// on its own, in any order, and is the same on every machine.
public struct ContactGenerator: Sendable {
    public let seed: UInt64
    /// The "now" of the data set: every timestamp lies at or before it.
    public let referenceTime: Int
    public let workspaceID: String

    /// A day on which a share of the contacts was created at once, as a bulk import makes:
    /// `start` is the day's first second, `share` the fraction of contacts (by index) on it.
    public struct BulkDay: Sendable, Equatable {
        public var start: Int
        public var share: Double

        public init(start: Int, share: Double) {
            self.start = start
            self.share = share
        }
    }

    public let bulkDay: BulkDay?

    public init(
        seed: UInt64, referenceTime: Int = 1_767_225_600, workspaceID: String = "ws_synthetic", bulkDay: BulkDay? = nil
    ) {
        self.seed = seed
        self.referenceTime = referenceTime
        self.workspaceID = workspaceID
        self.bulkDay = bulkDay
    }

    public func contact(at index: Int) -> SyntheticContact {
        var random = SplitMix64(seed: seed &+ UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15)
        let first = Self.firstNames[random.below(Self.firstNames.count)]
        let last = Self.lastNames[random.below(Self.lastNames.count)]
        let domain = Self.domains[random.below(Self.domains.count)]
        let role: SyntheticContact.Role = random.chance(0.8) ? .user : .lead
        let threeYears = 3 * 365 * 86_400
        var createdAt = referenceTime - random.below(threeYears)
        if let bulkDay {
            // A draw of its own, so the rest of the contact is the same with or without it.
            var draw = SplitMix64(seed: seed ^ UInt64(truncatingIfNeeded: index) &* 0xA24B_AED4_963E_E407)
            if draw.chance(bulkDay.share) { createdAt = min(referenceTime, bulkDay.start + draw.below(86_400)) }
        }
        var updatedAt = createdAt + random.below(referenceTime - createdAt + 1)
        if random.chance(0.05) {
            // Clusters of contacts sharing one updated_at, as bulk updates produce: one of the
            // last 30 midnights.
            updatedAt = max(createdAt, referenceTime - 86_400 * random.below(30))
        }
        let phone: String? =
            random.chance(0.7)
            ? "+\(Self.countryCodes[random.below(Self.countryCodes.count)])\(100_000_000 + random.below(900_000_000))"
            : nil
        let plan = Self.plans[random.below(Self.plans.count)]
        var attributes: [(String, SyntheticContact.AttributeValue)] = [
            ("plan", .string(plan)),
            ("seats", .int(1 + random.below(250))),
            ("vip", .bool(random.chance(0.1))),
        ]
        if random.chance(0.3) {
            attributes.append(("company", .string(Self.companies[random.below(Self.companies.count)])))
        }
        if random.chance(0.05) {
            attributes.append(
                ("notes", .string("Called on \(random.below(28) + 1)/03, asked about \"billing\".\nFollow up next week")))
        }
        return SyntheticContact(
            index: index,
            id: hexID(index, createdAt: createdAt),
            externalID: role == .user ? "user-\(index)" : nil,
            role: role,
            email: "\(first.ascii).\(last.ascii)\(index)@\(domain)",
            phone: phone,
            name: "\(first.display) \(last.display)",
            avatarURL: random.chance(0.4) ? "https://static.example.com/avatars/\(index).png" : nil,
            ownerID: random.chance(0.5) ? String(991_267_400 + random.below(20)) : nil,
            customAttributes: attributes,
            createdAt: createdAt,
            updatedAt: updatedAt,
            signedUpAt: role == .user ? createdAt : nil,
            lastSeenAt: random.chance(0.6) ? updatedAt : nil,
            city: Self.cities[random.below(Self.cities.count)],
            workspaceID: workspaceID
        )
    }

    public func contacts(_ range: Range<Int>) -> [SyntheticContact] {
        range.map(contact(at:))
    }

    /// A 24-hex-digit id shaped like Intercom's: the first 8 digits are the creation time, so
    /// ids sort by creation; the other 16 are unique per index (a bijective mix of it).
    private func hexID(_ index: Int, createdAt: Int) -> String {
        let mixed = UInt64(truncatingIfNeeded: index) &* 0xD6E8_FEB8_6659_FD93 ^ (seed &* 0x2545_F491_4F6C_DD1D)
        return hex(UInt64(UInt32(truncatingIfNeeded: createdAt)), digits: 8) + hex(mixed, digits: 16)
    }

    private func hex(_ value: UInt64, digits: Int) -> String {
        let symbols = Array("0123456789abcdef".utf8)
        var bytes = [UInt8](repeating: 0, count: digits)
        var rest = value
        for position in stride(from: digits - 1, through: 0, by: -1) {
            bytes[position] = symbols[Int(rest & 0xF)]
            rest >>= 4
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension ContactGenerator {
    struct Name: Sendable {
        let display: String
        let ascii: String
    }

    static let firstNames: [Name] = [
        ("José", "jose"), ("Zoë", "zoe"), ("François", "francois"), ("Siobhán", "siobhan"), ("Łukasz", "lukasz"),
        ("Ana", "ana"), ("Maria", "maria"), ("Mário", "mario"), ("Anaïs", "anais"), ("Chloé", "chloe"),
        ("Søren", "soren"), ("Björn", "bjorn"), ("Ólafur", "olafur"), ("Renée", "renee"), ("Jürgen", "jurgen"),
        ("Noémie", "noemie"), ("Ines", "ines"), ("Mateo", "mateo"), ("Liam", "liam"), ("Olivia", "olivia"),
        ("Emma", "emma"), ("Noah", "noah"), ("Amelia", "amelia"), ("Oliver", "oliver"), ("Sofia", "sofia"),
        ("Lucas", "lucas"), ("Mia", "mia"), ("Ethan", "ethan"), ("Aisha", "aisha"), ("Yuki", "yuki"),
        ("Wei", "wei"), ("Priya", "priya"), ("Arjun", "arjun"), ("Fatima", "fatima"), ("Omar", "omar"),
        ("Kofi", "kofi"), ("Ngozi", "ngozi"), ("Dmitri", "dmitri"), ("Anya", "anya"), ("Marcus", "marcus"),
        ("Hannah", "hannah"), ("Grace", "grace"), ("Samuel", "samuel"), ("Leah", "leah"), ("Martina", "martina"),
        ("Marek", "marek"), ("Tomás", "tomas"), ("Seán", "sean"), ("Niamh", "niamh"), ("Dara", "dara"),
    ].map { Name(display: $0.0, ascii: $0.1) }

    static let lastNames: [Name] = [
        ("O'Brien", "obrien"), ("D'Angelo", "dangelo"), ("Müller", "muller"), ("Nguyễn", "nguyen"), ("García", "garcia"),
        ("López", "lopez"), ("Martínez", "martinez"), ("Kowalski", "kowalski"), ("Søndergaard", "sondergaard"),
        ("Smith", "smith"), ("Johnson", "johnson"), ("Brown", "brown"), ("Taylor", "taylor"), ("Wilson", "wilson"),
        ("Dubois", "dubois"), ("Lefèvre", "lefevre"), ("Rossi", "rossi"), ("Bianchi", "bianchi"), ("Schmidt", "schmidt"),
        ("Novák", "novak"), ("Horváth", "horvath"), ("Yılmaz", "yilmaz"), ("Kim", "kim"), ("Tanaka", "tanaka"),
        ("Chen", "chen"), ("Patel", "patel"), ("Okafor", "okafor"), ("Mensah", "mensah"), ("Ivanova", "ivanova"),
        ("Andersson", "andersson"), ("Ó Súilleabháin", "osuilleabhain"), ("MacDonald", "macdonald"),
        ("van der Berg", "vanderberg"), ("da Silva", "dasilva"), ("Marchetti", "marchetti"), ("Markovic", "markovic"),
        ("Fernández", "fernandez"), ("Hernández", "hernandez"), ("Laurent", "laurent"), ("Weiß", "weiss"),
    ].map { Name(display: $0.0, ascii: $0.1) }

    static let domains = [
        "example.com", "example.org", "mail.example.net", "acme.test", "globex.test", "initech.test", "umbrella.test",
    ]
    static let countryCodes = [1, 44, 33, 49, 353, 34, 39, 61, 81, 55]
    static let plans = ["free", "starter", "pro", "enterprise"]
    static let companies = ["Acme, Inc.", "Globex Corporation", "Initech", "Umbrella, Ltd.", "Hooli", "Soylent \"Green\" Co."]
    static let cities = ["Dublin", "London", "Paris", "Berlin", "São Paulo", "Zürich", "Kraków", "San Francisco", "Tokyo"]
}

/// SplitMix64: small, fast, and the same on every platform.
public struct SplitMix64: Sendable, RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0..<bound`.
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0)
        return Int(next() % UInt64(bound))
    }

    public mutating func chance(_ probability: Double) -> Bool {
        Double(next() >> 11) / Double(1 << 53) < probability
    }
}
