/// A configured name as a dictionary key, compared and hashed ASCII case-insensitively (names
/// are ASCII by the naming rules, and aliases travel in host names). No lower-cased copy is made
/// to look one up.
public struct CaseInsensitiveName: Hashable, Sendable {
    public let name: String

    @inlinable
    public init(_ name: String) { self.name = name }

    @inlinable
    public static func == (a: Self, b: Self) -> Bool { a.name.caseInsensitiveEquals(b.name) }

    @inlinable
    public func hash(into hasher: inout Hasher) {
        var name = self.name
        name.withUTF8 { bytes in
            for byte in bytes { hasher.combine(byte.asciiLowercased) }
        }
        hasher.combine(name.utf8.count)
    }
}

/// Position of each name in a list, by ``CaseInsensitiveName``: the lookup a request makes for
/// its named credential (and that one's external credential) costs the same with 1,000 of them
/// configured as with one. A name listed twice resolves to its first position, as a scan would.
@usableFromInline
struct NameIndex: Sendable {
    @usableFromInline var positions: [CaseInsensitiveName: Int] = [:]

    @usableFromInline
    init(_ names: some Sequence<String>) {
        for (position, name) in names.enumerated() {
            let key = CaseInsensitiveName(name)
            if positions[key] == nil { positions[key] = position }
        }
    }

    @inlinable
    func position(of name: String) -> Int? { positions[CaseInsensitiveName(name)] }
}
