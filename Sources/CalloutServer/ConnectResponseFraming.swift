import NIOCore
import NIOHTTP1

/// Lets the refusal of a `CONNECT` carry its problem body.
///
/// NIO's server pipeline frames every answer to a `CONNECT` as bodiless, which is right for the
/// 2xx that opens a tunnel and wrong for the 405 the proxy sends (RFC 9112 §6.3: only a 2xx
/// answer to CONNECT has no body). The proxy never tunnels and a CONNECT is the last request of
/// its connection (nothing after its head is parsed), so on a CONNECT head the paired response
/// encoder is swapped for one that frames the refusal like any other response. Called by the
/// connection's handler when it sees the head, so other requests pay nothing for it.
enum ConnectResponseFraming {
    static func unpairEncoder(_ pipeline: ChannelPipeline.SynchronousOperations) {
        guard let paired = try? pipeline.context(handlerType: HTTPResponseEncoder.self) else { return }
        _ = try? pipeline.addHandler(HTTPResponseEncoder(), position: .before(paired.handler))
        pipeline.removeHandler(context: paired, promise: nil)
    }
}
