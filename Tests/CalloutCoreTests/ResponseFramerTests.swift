import CalloutCore
import Testing

@Suite struct ResponseFramerTests {
    func feed(_ text: String, head: Bool = false) -> ResponseFramer.Progress {
        var framer = ResponseFramer(requestMethodIsHEAD: head)
        return framer.consume(Array(text.utf8))
    }

    /// The same bytes fed in pieces cut at every position give the same outcome as fed at once.
    func feedSplitEverywhere(_ text: String, head: Bool = false) -> [ResponseFramer.Progress] {
        let bytes = Array(text.utf8)
        return (0...bytes.count).map { cut in
            var framer = ResponseFramer(requestMethodIsHEAD: head)
            framer.consume(bytes[..<cut])
            return framer.consume(bytes[cut...])
        }
    }

    let fixed = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
    let chunked =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n"

    @Test func aResponseWithALengthEndsAfterItsBody() {
        #expect(feed(fixed) == .ended(extraBytes: 0))
        #expect(feed(String(fixed.dropLast())) == .inMessage)
        #expect(feedSplitEverywhere(fixed).allSatisfy { $0 == .ended(extraBytes: 0) })
    }

    @Test func bytesAfterTheEndAreCounted() {
        #expect(feed(fixed + "X") == .ended(extraBytes: 1))
        // A second complete response, as an upstream that answers unasked sends it.
        #expect(feed(fixed + fixed) == .ended(extraBytes: fixed.utf8.count))
        #expect(feedSplitEverywhere(fixed + "junk").allSatisfy { $0 == .ended(extraBytes: 4) })
        // Even a stray line ending is more than was asked for.
        #expect(feed(fixed + "\r\n") == .ended(extraBytes: 2))
    }

    @Test func chunkedResponsesEndAfterTheLastChunkAndTrailers() {
        #expect(feed(chunked) == .ended(extraBytes: 0))
        #expect(feedSplitEverywhere(chunked).allSatisfy { $0 == .ended(extraBytes: 0) })
        #expect(feed(chunked + "HTTP/1.1") == .ended(extraBytes: 8))
        let noTrailers = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        #expect(feed(noTrailers) == .ended(extraBytes: 0))
        #expect(feed(String(noTrailers.dropLast(2))) == .inMessage)
    }

    @Test func responsesWithoutABodyEndAtTheirHead() {
        #expect(feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", head: true) == .ended(extraBytes: 0))
        #expect(feed("HTTP/1.1 204 No Content\r\n\r\n") == .ended(extraBytes: 0))
        #expect(feed("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n") == .ended(extraBytes: 0))
        #expect(feed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nX") == .ended(extraBytes: 1))
    }

    @Test func interimResponsesAreFollowedByTheFinalOne() {
        let text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + fixed
        #expect(feed(text) == .ended(extraBytes: 0))
        #expect(feedSplitEverywhere(text).allSatisfy { $0 == .ended(extraBytes: 0) })
    }

    @Test func aResponseWithoutLengthRunsUntilTheConnectionCloses() {
        #expect(feed("HTTP/1.0 200 OK\r\n\r\nanything at all") == .inMessage)
        #expect(feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc") == .inMessage)
    }

    @Test func framingsThatCannotBeTrustedAreInvalid() {
        #expect(feed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n") == .invalid)
        #expect(feed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n") == .invalid)
        #expect(feed("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello") == .ended(extraBytes: 0))
        #expect(feed("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n") == .invalid)
        #expect(feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") == .invalid)
        #expect(feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n") == .invalid)
        #expect(feed("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n") == .invalid)
        #expect(feed("junk that is not a status line\r\n") == .invalid)
        let huge = "HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: ResponseFramer.maxHeadBytes) + "\r\n\r\n"
        #expect(feed(huge) == .invalid)
    }

    @Test func linesEndedByALoneLineFeedAreAccepted() {
        #expect(feed("HTTP/1.1 200 OK\nContent-Length: 2\n\nok") == .ended(extraBytes: 0))
        #expect(feed("\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") == .ended(extraBytes: 0))
    }
}
