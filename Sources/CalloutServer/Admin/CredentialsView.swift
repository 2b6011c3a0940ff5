import CalloutCore
import CalloutTokens
import Foundation

/// `GET /credentials`: what is configured and what the token cache holds, by name and state.
/// Custom header and claim values are not shown (a static header may be an API key); tokens,
/// assertions and keys never are. A cached token's evaluated scope and claims may hold a
/// caller's `$User` data, so only their counts and the claim names are.
enum CredentialsView {
    static func render(
        snapshot: RuntimeConfiguration.Snapshot, cache: [TokenCacheEntrySnapshot], readiness: Readiness,
        tokenStats: TokenCacheStats = TokenCacheStats()
    ) -> JSONValue {
        let config = snapshot.config
        let mtls = Set(
            (config.namedCredentials.compactMap(\.clientCertificate)
                + config.externalCredentials.compactMap(\.identityProviderClientCertificate)).map { $0.lowercased() })
        let signing = Set(config.externalCredentials.map { $0.signingCertificate.lowercased() })
        return JSON.object([
            ("generation", JSON.int(snapshot.generation)),
            ("source_file", .string(config.sourceFile)),
            ("named_credentials", .array(config.namedCredentials.map(named))),
            (
                "external_credentials",
                .array(
                    config.externalCredentials.map { credential in
                        external(
                            credential, fetched: readiness.hasFetched(credential.name),
                            cachedTokens: cache.count { $0.key.externalCredential == credential.name },
                            tokens: tokenStats.perCredential[credential.name] ?? CredentialTokenStats())
                    })
            ),
            (
                "certificates",
                .array(
                    config.certificates.map {
                        certificate(
                            $0, material: snapshot.materials.signingMaterial($0.name),
                            usedFor: (signing.contains($0.name.lowercased()) ? ["signing"] : [])
                                + (mtls.contains($0.name.lowercased()) ? ["mtls"] : []))
                    })
            ),
            ("tokens", .array(cache.map(token))),
        ])
    }

    static func named(_ n: NamedCredentialConfig) -> JSONValue {
        JSON.object([
            ("name", .string(n.name)), ("label", .string(n.label)), ("url", .string(redactUserInfo(n.url))),
            ("external_credential", .string(n.externalCredential)), ("enabled", .bool(n.enabled)),
            ("generate_authorization_header", .bool(n.generateAuthorizationHeader)),
            ("allow_formulas_in_headers", .bool(n.allowFormulasInHeaders)),
            ("allow_formulas_in_body", .bool(n.allowFormulasInBody)),
            ("client_certificate", JSON.string(n.clientCertificate)),
            ("custom_headers", JSON.strings(n.customHeaders.map(\.name))),
        ])
    }

    /// `issued_token_lifetime_seconds`: the lifetime of the last token the identity provider
    /// issued; `callouts_waited_for_token`: callouts that waited for a fetch instead of being
    /// served a cached token.
    static func external(
        _ e: ExternalCredentialConfig, fetched: Bool, cachedTokens: Int, tokens: CredentialTokenStats
    ) -> JSONValue {
        JSON.object([
            ("name", .string(e.name)), ("label", .string(e.label)),
            ("authentication_flow", .string(e.flow.rawValue)),
            ("client_authentication", .string(e.clientAuthentication.rawValue)),
            (
                "identity_provider_url",
                e.identityProviderIssuer == nil ? .string(redactUserInfo(e.identityProviderURL)) : nil
            ),
            ("identity_provider_issuer", e.identityProviderIssuer.map { .string(redactUserInfo($0)) }),
            ("signing_certificate", e.flow.signsJWT ? .string(e.signingCertificate) : nil),
            ("signing_algorithm", .string(e.signingAlgorithm.rawValue)),
            ("scope", JSON.string(e.scope?.source)),
            ("jwt_expiration_seconds", JSON.int(e.jwtExpirationSeconds)),
            ("additional_refresh_status_codes", .array(e.additionalRefreshStatusCodes.map { JSON.int($0) })),
            ("jwt_claims", JSON.strings(e.jwtClaims.map(\.name))),
            ("jwt_header", JSON.strings(e.jwtHeader.map(\.name))),
            ("custom_headers", JSON.strings(e.customHeaders.map(\.name))),
            ("identity_provider_client_certificate", JSON.string(e.identityProviderClientCertificate)),
            ("token_fetched_once", .bool(fetched)), ("cached_tokens", JSON.int(cachedTokens)),
            ("prefetch", .bool(e.prefetch)),
            ("issued_token_lifetime_seconds", JSON.seconds(tokens.issuedLifetimeSeconds)),
            ("callouts_waited_for_token", JSON.int(tokens.waits)),
            (
                "principals",
                .array(
                    e.principals.map {
                        JSON.object([
                            ("sequence_number", JSON.int($0.sequenceNumber)), ("name", .string($0.name)),
                            ("client_id", .string($0.clientId)), ("permission_sets", JSON.strings($0.permissionSets)),
                            ("profiles", JSON.strings($0.profiles)),
                            ("client_secret_from", secretSource($0.clientSecret)),
                        ])
                    })
            ),
        ])
    }

    /// Where a principal's client secret is read from (`env:NAME` or `file:PATH`), never the secret.
    static func secretSource(_ source: ClientSecretSource?) -> JSONValue? {
        switch source?.kind {
        case .environment(let name): .string("env:" + name)
        case .file(let path): .string("file:" + path)
        case nil: nil
        }
    }

    static func certificate(_ c: CertificateConfig, material: SigningMaterial?, usedFor: [String]) -> JSONValue {
        let formatter = ISO8601DateFormatter()
        let key = material?.key
        return JSON.object([
            ("name", .string(c.name)),
            ("key_type", JSON.string(key?.keyType.rawValue)),
            ("key_bits", key.map { JSON.int($0.rsaModulusBits ?? 256) }),
            ("subject", JSON.string(material?.certificate?.subject)),
            ("not_after", JSON.string(material?.certificate.map { formatter.string(from: $0.notValidAfter) })),
            (
                "days_left",
                material?.certificate.map { JSON.int(Int($0.notValidAfter.timeIntervalSinceNow / 86_400)) }
            ),
            ("x5t_s256", JSON.string(material?.certificate?.x5tS256)),
            ("used_for", JSON.strings(usedFor)),
        ])
    }

    static func token(_ t: TokenCacheEntrySnapshot) -> JSONValue {
        JSON.object([
            ("external_credential", .string(t.key.externalCredential)), ("principal", .string(t.key.principal)),
            ("scope_count", JSON.int(t.key.scope.map { $0.split(separator: " ").count } ?? 0)),
            ("claims", JSON.strings(claimNames(t.key.canonicalClaims))),
            ("status", .string(t.status.rawValue)), ("token_present", .bool(t.tokenPresent)),
            ("expires_in_seconds", JSON.seconds(t.expiresInSeconds)), ("age_seconds", JSON.seconds(t.ageSeconds)),
            ("retry_after_seconds", JSON.seconds(t.retryAfterSeconds)),
            ("waiters", JSON.int(t.waiters)), ("consecutive_failures", JSON.int(t.consecutiveFailures)),
            ("last_error", JSON.string(t.lastErrorCode)), ("source", JSON.string(t.origin?.rawValue)),
        ])
    }

    /// The names in a ``TokenCacheKey/canonicalClaims`` string (`k=v&k2=v2`, `\` escapes).
    static func claimNames(_ canonical: String) -> [String] {
        var names: [String] = []
        var current = ""
        var inName = true
        var escaped = false
        for character in canonical {
            if escaped {
                if inName { current.append(character) }
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "=" && inName {
                names.append(current)
                current = ""
                inName = false
            } else if character == "&" {
                inName = true
            } else if inName {
                current.append(character)
            }
        }
        return names
    }

    /// `https://user:pass@host/...` → `https://host/...`.
    static func redactUserInfo(_ url: URL) -> String {
        guard url.user != nil || url.password != nil,
            var components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        else { return url.absoluteString }
        components.user = nil
        components.password = nil
        return components.string ?? url.absoluteString
    }
}
