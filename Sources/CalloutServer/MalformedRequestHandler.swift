import CalloutCore
import NIOCore
import NIOHTTP1

/// Turns HTTP parse errors (smuggling shapes, oversize heads, bad bytes) into a problem response
/// and closes the connection. Sits right after the decoder.
final class MalformedRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let maxHeaderBytes: Int
    private var responded = false

    init(maxHeaderBytes: Int) { self.maxHeaderBytes = maxHeaderBytes }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError, !responded else {
            context.close(promise: nil)
            return
        }
        responded = true
        let problem: Problem =
            if let e = error as? HTTPParserError, e == .headerOverflow {
                .headersTooLarge(limit: maxHeaderBytes)
            } else {
                .badRequest("malformed HTTP request")
            }
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
