import Testing

@testable import CalloutCore

/// Rules that depend on who wrote a formula and where its value goes.
@Suite struct FormulaUseTests {
    static func callerContext() -> FormulaContext {
        var context = FormulaFixtures.context(allowSecrets: true)
        context.use = .callerWritten
        return context
    }

    @Test(arguments: [
        "{!$Credential.Acme.AccessToken}",
        "Bearer {!$Credential.Acme.AccessToken}",
        "token={!$Credential.Acme.AccessToken}&x={!UPPER($User.Department)}",
        "{!$Credential.Acme.AuthorizationHeaderValue}",
        "{!($Credential.Acme.AccessToken)}",
    ])
    func callersMayPlaceTheTokenAsAWholeValue(_ source: String) {
        let value = FormulaFixtures.evaluate(source, Self.callerContext())
        #expect(value?.contains(FormulaFixtures.secretToken) == true)
    }

    /// The attack: a function or comparison over the token turns the proxy's answer (an error
    /// or not) into an oracle. Refused whatever the token is, so both outcomes look the same.
    @Test(arguments: [
        #"{!IF(BEGINS($Credential.Acme.AccessToken, "tok"), "y", BASE64DECODE("DQo="))}"#,
        #"{!IF(BEGINS($Credential.Acme.AccessToken, "zzz"), "y", BASE64DECODE("DQo="))}"#,
        #"{!LEN($Credential.Acme.AccessToken)}"#,
        #"{!$Credential.Acme.AccessToken = "x"}"#,
        #"{!"Bearer " & $Credential.Acme.AccessToken}"#,
        #"{!HEX(HASH("SHA-256", $Credential.Acme.AuthorizationHeaderValue))}"#,
    ])
    func callersMayNotComputeWithTheToken(_ source: String) {
        let error = FormulaFixtures.evaluationError(source, Self.callerContext())
        #expect(error?.message.contains("only as a whole") == true, "\(source)")
        #expect(error?.message.contains(FormulaFixtures.secretToken) == false)
    }

    @Test func configuredFormulasKeepFullUse() {
        let value = FormulaFixtures.evaluate(
            #"{!"Bearer " & LEFT($Credential.Acme.AccessToken, 3)}"#, FormulaFixtures.context(allowSecrets: true))
        #expect(value == "Bearer tok")
    }

    @Test func scopeMergeFieldsMayNotHoldWhitespace() {
        var context = FormulaFixtures.context()
        context.use = .scope
        context.user["Department"] = "Finance session:role:Admin offline_access"
        let error = FormulaFixtures.evaluationError(#"{!"session:role:" & $User.Department}"#, context)
        #expect(error?.message == "a merge field value used in a scope may not contain whitespace")
        context.user["Department"] = "Finance\tAdmin"
        #expect(FormulaFixtures.evaluationError("{!$User.Department}", context) != nil)
        context.user["Department"] = "Finance"
        #expect(
            FormulaFixtures.evaluate(#"read {!"session:role:" & $User.Department}"#, context)
                == "read session:role:Finance")
        // Outside a scope, spaces are ordinary text.
        #expect(FormulaFixtures.evaluate("{!$User.Spaces}") == "  padded  ")
    }
}
