import CalloutCore
import Testing

@Suite struct LogRateLimiterTests {
    let second: UInt64 = 1_000_000_000

    @Test func theFirstOfEachKindIsLoggedThenOncePerInterval() {
        var limiter = LogRateLimiter<String>(intervalSeconds: 60)
        #expect(limiter.admit("a", now: 0) == 0)
        #expect(limiter.admit("a", now: 1 * second) == nil)
        #expect(limiter.admit("a", now: 59 * second) == nil)
        #expect(limiter.admit("b", now: 59 * second) == 0, "kinds are limited separately")
        #expect(limiter.admit("a", now: 60 * second) == 2, "the next line says how many were left out")
        #expect(limiter.admit("a", now: 61 * second) == nil)
    }

    @Test func kindsAreBounded() {
        var limiter = LogRateLimiter<Int>(intervalSeconds: 60, maxKinds: 2)
        #expect(limiter.admit(1, now: 0) == 0)
        #expect(limiter.admit(2, now: 1) == 0)
        #expect(limiter.admit(3, now: 2) == 0)
        // The oldest was forgotten, so it is logged again.
        #expect(limiter.admit(1, now: 3) == 0)
    }
}
