import NIOCore
import NIOHTTP1

/// Lets the refusal of a `CONNECT` carry its problem body.
///
/// NIO's server pipeline frames every answer to a `CONNECT` as bodiless, which is right for the
/// 2xx that opens a tunnel and wrong for the 405 the proxy sends (RFC 9112 §6.3: only a 2xx
/// answer to CONNECT has no body). The proxy never tunnels and a CONNECT is the last request of
/// its connection (nothing after its head is parsed), so on a CONNECT head the paired response
/// encoder is swapped for one that frames the refusal like any other response.
final class ConnectResponseFraming: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data), head.method == .CONNECT {
            let pipeline = context.pipeline.syncOperations
            if let paired = try? pipeline.context(handlerType: HTTPResponseEncoder.self) {
                _ = try? pipeline.addHandler(HTTPResponseEncoder(), position: .before(paired.handler))
                pipeline.removeHandler(context: paired, promise: nil)
            }
        }
        context.fireChannelRead(data)
    }
}
