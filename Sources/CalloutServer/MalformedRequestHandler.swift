import CalloutCore
import NIOCore
import NIOHTTP1

/// Turns HTTP parse errors (smuggling shapes, oversize heads, bad bytes) into a problem response
/// and closes the connection. Sits right after the decoder.
///
/// A parse error can come after a request head already went up to the forwarder (a bad chunk
/// size, or a head whose framing llhttp rejects only once it is complete). The problem is then
/// this request's only response: anything the forwarder writes afterwards is dropped (its write
/// fails), so the client never sees two responses. If the forwarder's response has already
/// begun, no problem can be written and the connection is just closed.
final class MalformedRequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let maxHeaderBytes: Int
    private var responded = false
    /// The forwarder wrote a response head whose end has not been written yet.
    private var responseInProgress = false

    init(maxHeaderBytes: Int) { self.maxHeaderBytes = maxHeaderBytes }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !responded else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200: responseInProgress = true
        case .end: responseInProgress = false
        case .head, .body: break
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A client closing mid-request (invalidEOFState) gets no answer: nobody is listening.
        guard let parseError = error as? HTTPParserError, parseError != .invalidEOFState, !responded,
            !responseInProgress, context.channel.isActive
        else {
            context.close(promise: nil)
            return
        }
        responded = true
        let problem: Problem =
            parseError == .headerOverflow
            ? .headersTooLarge(limit: maxHeaderBytes) : .badRequest("malformed HTTP request")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: Problem.contentType)
        headers.add(name: "Content-Length", value: String(problem.json.utf8.count))
        headers.add(name: "Connection", value: "close")
        context.write(
            wrapOutboundOut(
                .head(
                    HTTPResponseHead(
                        version: .http1_1, status: HTTPResponseStatus(statusCode: problem.status), headers: headers))),
            promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: problem.json)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
