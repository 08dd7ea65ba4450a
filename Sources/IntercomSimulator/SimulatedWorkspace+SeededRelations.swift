import Foundation
import IntercomJSON
import SyntheticData

/// The tags and companies seeded contacts carry, deterministic from the seed, shaped as a
/// support team's workspace is: `seedTags` tags, a few used on many contacts and most on few;
/// about half the contacts untagged, and 1 in 250 with more tags than a body lists (12 to 15);
/// `seedCompanies` companies, with about 60 % of the contacts in one and 4 % in two.
extension SimulatedWorkspace {
    static let seededTagNames = [
        "VIP", "churn-risk", "beta", "enterprise", "trial", "newsletter", "onboarding", "champion", "at-risk",
        "partner", "high-value", "feedback", "support-priority", "renewal", "webinar", "event-2026", "integration",
        "mobile", "api-user", "Früh Adopter",
    ]
    static let seededPlans = ["Free", "Starter", "Pro", "Enterprise"]
    static let seededIndustries = ["Software", "Retail", "Manufacturing", "Finance", "Health", "Education", "Media"]
    static let seededNameParts = (
        ["Blue", "North", "Bright", "Silver", "Iron", "Golden", "Quiet", "Rapid", "Green", "Red", "Open", "Prime"],
        ["Sun", "Harbor", "Field", "Peak", "River", "Stone", "Wave", "Forge", "Pine", "Orbit", "Bridge", "Lake"],
        ["Labs", "Works", "Systems", "& Co.", "Group", "Partners", "Studio", "Foods", "Logistics", "Health"]
    )

    /// What the seeded contacts carry: made by the workspace's initialiser, which cannot call
    /// its methods.
    struct SeededRelations {
        var tags: [SimTag] = []
        var companies: [SimCompany] = []
        var tagsByContact: [String: [String]] = [:]
        var companiesByContact: [String: [String]] = [:]
    }

    static func seededRelations(for configuration: SimulatorConfiguration, now: Int, contactIDs: [String])
        -> SeededRelations
    {
        var relations = SeededRelations()
        guard configuration.seedTags > 0 || configuration.seedCompanies > 0 else { return relations }
        var random = SplitMix64(seed: configuration.seed &* 0x9E37_79B9_7F4A_7C15 ^ 0x7A65)
        for number in 0..<configuration.seedTags {
            let base = seededTagNames[number % seededTagNames.count]
            let name = number < seededTagNames.count ? base : "\(base) \(number / seededTagNames.count + 1)"
            relations.tags.append(SimTag(id: String(7_000_001 + number), name: name))
        }
        let (first, second, third) = seededNameParts
        let combinations = first.count * second.count * third.count
        for number in 0..<configuration.seedCompanies {
            let serial = String(number + 1, radix: 16)
            let id = "65a1b2c3c" + String(repeating: "0", count: max(0, 15 - serial.count)) + serial
            var name =
                "\(first[number % first.count]) \(second[(number / first.count) % second.count]) "
                + "\(third[(number / (first.count * second.count)) % third.count])"
            if number >= combinations { name += " \(number / combinations + 1)" }
            let created = now - 86_400 * (30 + random.below(900))
            var company = SimCompany(id: id, companyID: "co-\(number + 1)", createdAt: created, updatedAt: created)
            company.name = name
            company.plan = seededPlans[random.below(seededPlans.count)]
            company.size = 1 + random.below(5_000)
            company.industry = seededIndustries[random.below(seededIndustries.count)]
            company.website = "https://\(name.lowercased().filter { $0.isLetter })-\(number + 1).example.com"
            company.monthlySpend = random.below(20_000)
            relations.companies.append(company)
        }
        // Tag k is drawn with weight 1/(k+1): a few tags carry most of the taggings.
        var cumulative: [Double] = []
        for index in relations.tags.indices { cumulative.append((cumulative.last ?? 0) + 1 / Double(index + 1)) }
        for id in contactIDs {
            if !relations.tags.isEmpty {
                let count = random.below(250) == 0 ? 12 + random.below(4) : [0, 0, 0, 0, 0, 1, 1, 1, 2, 3][random.below(10)]
                var tags: [String] = []
                while tags.count < min(count, relations.tags.count) {
                    let tag = relations.tags[skewed(random.next(), cumulative: cumulative)].id
                    if !tags.contains(tag) { tags.append(tag) }
                }
                if !tags.isEmpty { relations.tagsByContact[id] = tags }
            }
            if !relations.companies.isEmpty {
                let draw = random.below(100)
                let count = draw < 56 ? 1 : draw < 60 ? 2 : 0
                var companies: [String] = []
                while companies.count < min(count, relations.companies.count) {
                    let company = relations.companies[random.below(relations.companies.count)].id
                    if !companies.contains(company) { companies.append(company) }
                }
                if !companies.isEmpty { relations.companiesByContact[id] = companies }
            }
        }
        return relations
    }

    /// An index into `cumulative` (running sums of the weights 1/(index + 1)), drawn by weight.
    static func skewed(_ bits: UInt64, cumulative: [Double]) -> Int {
        let point = Double(bits >> 11) / Double(1 << 53) * cumulative[cumulative.count - 1]
        var low = 0
        var high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] > point { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
