import CalloutCore
import CalloutTokens

/// What to send back for one request.
struct IdentityProviderReply: Sendable {
    var status: Int
    var headers: [(String, String)] = []
    var body: String = ""
    /// Seconds to wait before answering.
    var delay: Double = 0
    /// Close the connection instead of answering.
    var closeWithoutAnswer = false

    static func json(_ status: Int, _ body: String, headers: [(String, String)] = [])
        -> IdentityProviderReply
    {
        IdentityProviderReply(
            status: status,
            headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store")] + headers,
            body: body)
    }

    static func oauthError(_ status: Int, _ error: String, _ description: String)
        -> IdentityProviderReply
    {
        .json(status, JSONValue.object(["error": .string(error), "error_description": .string(description)]).jsonText)
    }
}

/// The provider's mutable state, always used under its lock.
struct IdentityProviderState {
    var fault: DevelopmentIdentityProvider.Fault = .none
    var clients: Set<String>
    var registrations: [String: DevelopmentIdentityProvider.ClientRegistration] = [:]
    var requests: [DevelopmentIdentityProvider.RecordedRequest] = []
    var tokenRequestCount = 0
    var metadataRequestCount = 0
    var issued: [String: DevelopmentIdentityProvider.IssuedToken] = [:]
    var issuedOrder: [String] = []
    var issuedOrderStart = 0

    mutating func record(_ request: DevelopmentIdentityProvider.RecordedRequest, limit: Int) {
        requests.append(request)
        if requests.count > limit { requests.removeFirst(requests.count - limit) }
    }

    mutating func remember(
        _ token: String, _ info: DevelopmentIdentityProvider.IssuedToken, limit: Int
    ) {
        issued[token] = info
        issuedOrder.append(token)
        while issued.count > limit, issuedOrderStart < issuedOrder.count {
            issued.removeValue(forKey: issuedOrder[issuedOrderStart])
            issuedOrderStart += 1
        }
        if issuedOrderStart > 1_024, issuedOrderStart * 2 > issuedOrder.count {
            issuedOrder.removeFirst(issuedOrderStart)
            issuedOrderStart = 0
        }
    }
}

/// A random opaque token: `dev.` and 32 random bytes, base64url.
func makeOpaqueToken() -> String {
    var generator = SystemRandomNumberGenerator()
    let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    return "dev." + Base64URL.encode(bytes)
}
