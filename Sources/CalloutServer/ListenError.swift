import CalloutCore
import Foundation
import NIOCore

/// A listener that could not be opened, naming the address and the setting that asked for it.
public struct ListenError: Error, CustomStringConvertible {
    /// The configuration key: `proxy.listen` or `proxy.admin_listen`.
    public let setting: String
    public let address: HostPort
    /// Why, in words: "address already in use".
    public let reason: String

    init(setting: String, address: HostPort, error: any Error) {
        self.setting = setting
        self.address = address
        self.reason = Self.reason(error)
    }

    public var description: String {
        "cannot listen on \(address) (\(setting)): \(reason)"
    }

    static func reason(_ error: any Error) -> String {
        guard let io = error as? IOError else { return "\(error)" }
        switch io.errnoCode {
        case EADDRINUSE: return "address already in use (another process listens there; choose another port)"
        case EACCES: return "permission denied (ports below 1024 need privileges)"
        case EADDRNOTAVAIL: return "the address is not one of this machine's"
        default: return "error \(io.errnoCode) on bind"
        }
    }

    /// Runs `bind`, reporting a failure as a `ListenError` for `setting` at `address`.
    static func naming<T>(_ setting: String, _ address: HostPort, _ bind: () async throws -> T) async throws -> T {
        do {
            return try await bind()
        } catch {
            throw ListenError(setting: setting, address: address, error: error)
        }
    }
}
