import CalloutCore
import CalloutTokens

/// Which external credentials' cached tokens a reload must drop: those whose token-relevant
/// settings changed, and those that are gone. Pure, so it is tested without I/O.
public enum TokenRelevantChanges {
    /// Names (as configured in `old`) of external credentials whose tokens are no longer valid
    /// under `new`: removed, or with a different identity provider URL, signing certificate,
    /// algorithm or key material, scope, claims, assertion header, principals' client ids or
    /// client secrets, JWT lifetime, identity provider client certificate, flow, client
    /// authentication or issuer.
    public static func credentialsToDrop(
        old: ProxyConfig, oldMaterials: CredentialMaterials, new: ProxyConfig, newMaterials: CredentialMaterials
    ) -> [String] {
        var drop: [String] = []
        for before in old.externalCredentials {
            guard let after = new.externalCredentials.first(where: { $0.name == before.name }) else {
                drop.append(before.name)
                continue
            }
            if changed(before, oldMaterials, after, newMaterials) { drop.append(before.name) }
        }
        return drop
    }

    static func changed(
        _ a: ExternalCredentialConfig, _ am: CredentialMaterials, _ b: ExternalCredentialConfig,
        _ bm: CredentialMaterials
    ) -> Bool {
        if a.flow != b.flow || a.clientAuthentication != b.clientAuthentication
            || a.identityProviderIssuer != b.identityProviderIssuer
        {
            return true
        }
        for principal in a.principals {
            if am.clientSecret(credential: a.name, principal: principal.name)
                != bm.clientSecret(credential: b.name, principal: principal.name)
            {
                return true
            }
        }
        if a.identityProviderURL != b.identityProviderURL || a.signingAlgorithm != b.signingAlgorithm
            || a.scope != b.scope || a.jwtExpirationSeconds != b.jwtExpirationSeconds
            || !a.signingCertificate.caseInsensitiveEquals(b.signingCertificate)
            || a.identityProviderClientCertificate?.lowercased() != b.identityProviderClientCertificate?.lowercased()
        {
            return true
        }
        if !a.jwtClaims.elementsEqual(b.jwtClaims, by: { $0 == $1 })
            || !a.jwtHeader.elementsEqual(b.jwtHeader, by: { $0 == $1 })
        {
            return true
        }
        let clientIds = { (c: ExternalCredentialConfig) in
            Dictionary(c.principals.map { ($0.name, $0.clientId) }, uniquingKeysWith: { x, _ in x })
        }
        if clientIds(a) != clientIds(b) { return true }
        if fingerprint(am.signingMaterial(a.signingCertificate))
            != fingerprint(bm.signingMaterial(b.signingCertificate))
        {
            return true
        }
        if let name = a.identityProviderClientCertificate,
            fingerprint(am.signingMaterial(name)) != fingerprint(bm.signingMaterial(name))
        {
            return true
        }
        return false
    }

    /// The public key and certificate bytes: a rotated key or certificate under the same name differs.
    static func fingerprint(_ material: SigningMaterial?) -> [UInt8]? {
        guard let material else { return nil }
        return material.key.publicKeyDER + [0] + (material.certificate?.derBytes ?? [])
    }
}
