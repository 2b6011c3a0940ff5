import CalloutCore
import NIOCore
import NIOHTTP1

/// Turns HTTP parse errors (smuggling shapes, oversize heads, bad bytes) into a problem response
/// and closes the connection. Sits right after the HTTP codec; watches responses so it never
/// answers in the middle of one (then it only closes).
final class MalformedRequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let maxHeaderBytes: Int
    private var responded = false
    private var responseInProgress = false

    init(maxHeaderBytes: Int) { self.maxHeaderBytes = maxHeaderBytes }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200: responseInProgress = true
        case .end: responseInProgress = false
        default: break
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
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
        let head = HTTPResponseHead(
            version: .http1_1, status: HTTPResponseStatus(statusCode: problem.status), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: problem.json)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
