/// Chooses the principal a caller acts as: among those its permission sets or profile qualify
/// for, the lowest sequence number. Permission set and profile names match without regard to
/// case (like Salesforce API names, they are unique without regard to case).
public enum PrincipalResolver {
    public enum Failure: Error, Sendable, Equatable {
        /// The caller qualifies for no principal of this external credential.
        case noPrincipal
        /// The caller asked for a principal it does not qualify for (or that does not exist).
        case requestedPrincipalNotAllowed(String)
    }

    /// Principals `identity` qualifies for, lowest sequence number first.
    public static func candidates(_ credential: ExternalCredentialConfig, for identity: CallerIdentity)
        -> [PrincipalConfig]
    {
        var qualified = credential.principals.filter { p in
            p.permissionSets.contains { set in identity.permissionSets.contains { $0.caseInsensitiveEquals(set) } }
                || (identity.profile.map { profile in p.profiles.contains { $0.caseInsensitiveEquals(profile) } }
                    ?? false)
        }
        // In place: the filtered array is this function's own, so sorting it allocates nothing.
        qualified.sort { $0.sequenceNumber < $1.sequenceNumber }
        return qualified
    }

    public static func choose(_ credential: ExternalCredentialConfig, for identity: CallerIdentity) -> Result<
        PrincipalConfig, Failure
    > {
        choose(among: candidates(credential, for: identity), requested: identity.requestedPrincipal)
    }

    /// The choice among `qualified` (lowest sequence first), honouring a requested principal.
    public static func choose(among qualified: [PrincipalConfig], requested: String?) -> Result<
        PrincipalConfig, Failure
    > {
        if let requested, !requested.isEmpty {
            guard let match = qualified.first(where: { $0.name.caseInsensitiveEquals(requested) }) else {
                return .failure(.requestedPrincipalNotAllowed(requested))
            }
            return .success(match)
        }
        guard let first = qualified.first else { return .failure(.noPrincipal) }
        return .success(first)
    }
}
