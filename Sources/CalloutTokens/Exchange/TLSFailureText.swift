import NIOSSL

/// A TLS failure told the way a user can act on it: BoringSSL's reason in words, without the
/// library's numbers and source paths, and where to look.
package enum TLSFailureText {
    /// e.g. `TLS handshake failed: certificate verify failed (is the identity provider's
    /// certificate trusted? see ca_file)`; nil when `error` is not a TLS error.
    package static func describe(_ error: any Error, peer: String) -> String? {
        let hint = "(is the \(peer)'s certificate trusted? see ca_file)"
        let reasons: [String]
        switch error {
        case let error as NIOSSLError:
            switch error {
            case .handshakeFailed(let boring): reasons = Self.reasons(boring)
            case .uncleanShutdown: return "the \(peer) closed the TLS connection uncleanly"
            default: reasons = []
            }
        case let error as BoringSSLError:
            reasons = Self.reasons(error)
        case let error as NIOSSLExtraError where error == .failedToValidateHostname:
            return "TLS handshake failed: the certificate is not for this host name \(hint)"
        case is NIOSSLExtraError:
            reasons = []
        default:
            return nil
        }
        return "TLS handshake failed" + (reasons.isEmpty ? " " : ": \(reasons.joined(separator: ", ")) ") + hint
    }

    /// The reason names of a BoringSSL error stack, in words: `CERTIFICATE_VERIFY_FAILED` gives
    /// "certificate verify failed".
    static func reasons(_ error: BoringSSLError) -> [String] {
        let stack: [BoringSSLInternalError]
        switch error {
        case .sslError(let s), .unknownError(let s), .invalidSNIName(let s), .failedToSetALPN(let s): stack = s
        default: return []
        }
        var out: [String] = []
        for entry in stack {
            if let reason = reasonName(in: entry.description), !out.contains(reason) { out.append(reason) }
        }
        return out
    }

    /// From `Error: 268435581 error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at /x.cc:1`
    /// the words "certificate verify failed"; synthetic descriptions ("EOF during handshake") as they are.
    static func reasonName(in description: String) -> String? {
        guard let start = description.firstRange(of: "error:") else {
            let text = description.hasPrefix("Error: ") ? String(description.dropFirst(7)) : description
            let trimmed = text.trimmingPrefix(while: { $0 == " " })
            return trimmed.isEmpty ? nil : String(trimmed)
        }
        let body = description[start.upperBound...]
        let beforeLocation = body.firstRange(of: " at ").map { body[..<$0.lowerBound] } ?? body
        guard let name = beforeLocation.split(separator: ":").last,
            name.allSatisfy({ $0.isASCII && ($0.isUppercase || $0.isNumber || $0 == "_") })
        else { return nil }
        return String(name.lowercased().map { $0 == "_" ? " " : $0 })
    }
}
