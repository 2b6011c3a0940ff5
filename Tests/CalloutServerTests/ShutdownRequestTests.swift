import Testing

@testable import CalloutServer

/// When SIGTERM and SIGINT are acted on, from the first moments of `serve` to its drain.
@Suite struct ShutdownRequestTests {
    @Test func aSignalDuringStartUpIsRememberedAndActedOnOnceServing() {
        var machine = ShutdownRequestStateMachine()
        #expect(machine.requestedDuringStartUp == nil)
        #expect(machine.signalled("SIGTERM") == .none)
        #expect(machine.requestedDuringStartUp == "SIGTERM")
        // A second one during start-up changes nothing: the first is the one reported.
        #expect(machine.signalled("SIGINT") == .none)
        #expect(machine.startedServing() == .stop(signal: "SIGTERM"))
        #expect(machine.state == .stopping(signal: "SIGTERM"))
        #expect(machine.requestedDuringStartUp == nil)
    }

    @Test func aSignalWhileServingStopsOnceAndLaterOnesAreIgnored() {
        var machine = ShutdownRequestStateMachine()
        #expect(machine.startedServing() == .none)
        #expect(machine.state == .serving)
        #expect(machine.signalled("SIGINT") == .stop(signal: "SIGINT"))
        #expect(machine.signalled("SIGTERM") == .none)
        #expect(machine.startedServing() == .none)
        #expect(machine.state == .stopping(signal: "SIGINT"))
    }
}
