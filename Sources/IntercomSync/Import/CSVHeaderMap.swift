import Foundation

/// Which contact field each column of a CSV file feeds.
///
/// Headers are matched without regard to case, spaces or punctuation, against the names
/// exports commonly use (`Email`, `E-mail address`, `Full name`, `Phone number`, `Type`,
/// `User ID`, …). `First name` and `Last name` columns are joined into the name. Explicit
/// mappings (`--map column=field`) win over the aliases.
///
/// A file with a `custom_attributes` column is read as this tool's own export: that column's
/// JSON object becomes the contact's custom attributes, types and all, and the export's
/// bookkeeping columns (`id`, `owner_id`, `created_at`, `updated_at`, `state`) are left out,
/// since the contact gets its own in the mirror it is imported into.
package struct CSVHeaderMap: Sendable, Equatable {
    /// A contact field a column can feed.
    package enum Field: String, Sendable, CaseIterable {
        case email
        case name
        case firstName = "first_name"
        case lastName = "last_name"
        case phone
        case role
        case externalID = "external_id"
        case avatar
    }

    /// What one column becomes.
    package enum Target: Sendable, Equatable {
        case field(Field)
        case customAttribute(String)
        /// A JSON object of custom attributes (the export's `custom_attributes`).
        case customAttributeMap
        /// A column of the export that the mirror sets itself (`id`, `state`, the timestamps).
        case exportBookkeeping
        case ignored
    }

    /// The header of the column an export writes the custom attributes to.
    package static let attributeMapHeader = "custom_attributes"
    /// The export's columns that describe a contact's place in the mirror it came from.
    private static let exportBookkeeping: Set<String> = ["id", "ownerid", "createdat", "updatedat", "state"]

    /// One entry per column, in file order.
    package private(set) var targets: [Target]
    /// The header as the file has it.
    package let header: [String]

    /// Columns that feed nothing.
    package var ignoredColumns: [String] {
        zip(header, targets).compactMap { $1 == .ignored ? $0 : nil }
    }

    /// The column each field comes from, settled with the header: rows look it up.
    private var columns: [Field: Int] = [:]

    package func column(of field: Field) -> Int? {
        columns[field]
    }

    /// The columns that hold a JSON object of custom attributes.
    package var attributeMapColumns: [Int] {
        targets.indices.filter { targets[$0] == .customAttributeMap }
    }

    /// Maps a header row.
    ///
    /// - Parameters:
    ///   - overrides: column name → field name (`email`, `name`, `first_name`, `last_name`,
    ///     `phone`, `role`, `external_id`, `avatar`, `ignore`, or `custom:NAME`), matched to
    ///     columns like the aliases are.
    ///   - customAttributes: columns that match no field become custom attributes named by
    ///     their header; otherwise they are ignored.
    /// - Throws: `ImportError` when an override names no column or no field, two columns claim
    ///   one field, or no column holds the email.
    package init(header: [String], overrides: [String: String] = [:], customAttributes: Bool = false) throws {
        self.header = header
        let keys = header.map(Self.key)
        var targets: [Target?] = Array(repeating: nil, count: header.count)
        for (column, fieldName) in overrides.sorted(by: { $0.key < $1.key }) {
            guard let index = keys.firstIndex(of: Self.key(column)) else {
                throw ImportError(
                    .badMapping,
                    "mapping \(column)=\(fieldName): the file has no column \"\(column)\" (it has "
                        + header.map { "\"\($0)\"" }.joined(separator: ", ") + ")", remedy: .mapColumns)
            }
            targets[index] = try Self.target(named: fieldName, column: column)
        }
        let isExport = header.contains { Self.isAttributeMap($0) }
        for index in header.indices where targets[index] == nil {
            if let field = Self.aliases[keys[index]], !targets.contains(.field(field)) {
                targets[index] = .field(field)
            } else if Self.isAttributeMap(header[index]) {
                targets[index] = .customAttributeMap
            } else if isExport, Self.exportBookkeeping.contains(keys[index]) {
                targets[index] = .exportBookkeeping
            } else if customAttributes, !keys[index].isEmpty {
                targets[index] = .customAttribute(header[index].trimmingCharacters(in: .whitespaces))
            } else {
                targets[index] = .ignored
            }
        }
        self.targets = targets.map { $0 ?? .ignored }
        for (index, target) in self.targets.enumerated() {
            if case .field(let field) = target, columns[field] == nil { columns[field] = index }
        }
        for field in Field.allCases where self.targets.filter({ $0 == .field(field) }).count > 1 {
            let columns = zip(header, self.targets).filter { $1 == .field(field) }.map { "\"\($0.0)\"" }
            throw ImportError(
                .badMapping,
                "columns \(columns.joined(separator: " and ")) both map to \(field.rawValue): "
                    + "map all but one of them to ignore", remedy: .mapColumns)
        }
        guard column(of: .email) != nil else {
            throw ImportError(
                .noEmailColumn,
                "no column holds the email (the header is "
                    + header.map { "\"\($0)\"" }.joined(separator: ", ") + ")", remedy: .mapColumns)
        }
    }

    private static func target(named name: String, column: String) throws -> Target {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        if trimmed.lowercased() == "ignore" { return .ignored }
        if trimmed.lowercased() == attributeMapHeader { return .customAttributeMap }
        if trimmed.lowercased().hasPrefix("custom:") {
            let attribute = String(trimmed.dropFirst("custom:".count)).trimmingCharacters(in: .whitespaces)
            guard !attribute.isEmpty else {
                throw ImportError(
                    .badMapping, "mapping \(column)=\(name): name the attribute after custom:", remedy: .mapColumns)
            }
            return .customAttribute(attribute)
        }
        guard let field = Field(rawValue: trimmed.lowercased().replacingOccurrences(of: "-", with: "_")) else {
            throw ImportError(
                .badMapping,
                "mapping \(column)=\(name): unknown field; use one of "
                    + Field.allCases.map(\.rawValue).joined(separator: ", ") + ", ignore, custom_attributes, or custom:NAME",
                remedy: .mapColumns)
        }
        return .field(field)
    }

    /// The export's own header, matched exactly (but for case and spaces): another tool's
    /// "Custom Attributes" column of text is not read as JSON.
    private static func isAttributeMap(_ header: String) -> Bool {
        header.trimmingCharacters(in: .whitespaces).lowercased() == attributeMapHeader
    }

    /// A header reduced to lowercase letters and digits: "E-mail Address" → "emailaddress".
    static func key(_ header: String) -> String {
        String(header.lowercased().unicodeScalars.filter { $0.properties.isAlphabetic || ("0"..."9").contains($0) })
    }

    private static let aliases: [String: Field] = {
        let names: [Field: [String]] = [
            .email: ["email", "emailaddress", "mail", "emailid", "contactemail", "primaryemail", "workemail"],
            .name: ["name", "fullname", "contactname", "displayname", "customername", "username"],
            .firstName: ["firstname", "givenname", "forename", "first"],
            .lastName: ["lastname", "surname", "familyname", "last"],
            .phone: ["phone", "phonenumber", "mobile", "mobilephone", "mobilenumber", "telephone", "tel", "cell"],
            .role: ["role", "type", "contacttype", "contactrole"],
            .externalID: ["externalid", "userid", "customerid", "uid"],
            .avatar: ["avatar", "avatarurl", "photo", "photourl", "picture", "pictureurl", "image", "imageurl"],
        ]
        var aliases: [String: Field] = [:]
        for (field, keys) in names {
            for key in keys { aliases[key] = field }
        }
        return aliases
    }()
}
