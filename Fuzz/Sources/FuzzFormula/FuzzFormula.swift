import CalloutCore
import Foundation
import FuzzDriver

private let context = FormulaContext(
    user: ["Department": "Finance", "Email": "ann@example.com", "Blob": "YQ0KWC1JbmplY3RlZDogMQ==", "Empty": ""],
    credentials: [
        "Acme_API": [
            "ClientId": "acme-reader", "PrincipalName": "Reader", "Name": "Acme_API", "Label": "Acme",
            "IdentityProviderUrl": "https://idp.example/token", "AccessToken": "fuzz-secret-token",
            "AuthorizationHeaderValue": "Bearer fuzz-secret-token", "TokenType": "Bearer",
        ]
    ],
    allowSecrets: true, namedCredentialName: "Acme", namedCredentialURL: "https://api.example/v2",
    now: { 1_700_000_000 }, uuid: { UUID(uuidString: "3F2504E0-4F89-41D3-9A0C-0305E82C3301")! },
    maxValueLength: 1300)

/// Any text as a formula: parsing and evaluation either succeed or throw, never trap; a value
/// that evaluates never carries CR, LF or NUL and never exceeds the length limit.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFormula(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let formula = try? Formula(parsing: text) else { return 0 }
    if let value = try? formula.evaluate(in: context) {
        precondition(!value.contains("\r") && !value.contains("\n") && !value.contains("\0"), "CR/LF/NUL in a value")
        precondition(value.count <= context.maxValueLength, "value longer than the limit")
    }
    return 0
}

/// The entry point SwiftPM links as `main` (see FuzzDriver.h).
@_cdecl("FuzzFormula_main")
public func fuzzFormulaMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    fuzz_driver_run(argc, argv) { data, size in
        guard let data else { return 0 }
        return fuzzFormula(data, size)
    }
}
