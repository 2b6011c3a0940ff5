import Testing

@testable import CalloutCore

@Suite struct BodyTemplateTests {
    let context = FormulaContext(
        user: ["Department": "Finance"], credentials: ["Acme_API": ["AccessToken": "tok", "ClientId": "c1"]],
        allowSecrets: true)

    func render(_ s: String) -> Result<String, BodyTemplate.Failure> {
        BodyTemplate.render(Array(s.utf8), context: context).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func blocksAreEvaluatedAndTextKept() {
        #expect(
            render(#"{"dept":"{!$User.Department}","t":"{!$Credential.Acme_API.AccessToken}"}"#)
                == .success(#"{"dept":"Finance","t":"tok"}"#))
        #expect(render("no blocks {here}") == .success("no blocks {here}"))
        #expect(render(#"a \{! b"#) == .success("a {! b"))
        #expect(render("{!'}' & \"x}\"}") == .success("}x}"))
    }

    @Test func longBodiesBeyondTheFormulaSourceLimit() throws {
        let filler = String(repeating: "x", count: 10_000)
        let rendered = try render(filler + "{!UPPER('a')}" + filler).get()
        #expect(rendered.count == 20_001)
    }

    @Test func failuresArePositioned() {
        guard case .failure(let f) = render("abc{!NOPE()}") else {
            Issue.record("expected failure")
            return
        }
        #expect(f.offset == 4)
        guard case .failure(let u) = render("abc{!'unterminated") else {
            Issue.record("expected failure")
            return
        }
        #expect(u.message.contains("unterminated"))
    }

    @Test func textualContentTypes() {
        #expect(BodyTemplate.isTextual(contentType: "application/json; charset=utf-8"))
        #expect(BodyTemplate.isTextual(contentType: "text/plain"))
        #expect(BodyTemplate.isTextual(contentType: "application/vnd.api+json"))
        #expect(!BodyTemplate.isTextual(contentType: "application/octet-stream"))
        #expect(!BodyTemplate.isTextual(contentType: nil))
    }
}
