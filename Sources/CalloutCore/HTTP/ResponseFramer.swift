/// Finds where one HTTP/1.1 response ends in the raw bytes of an upstream connection (RFC 9112 §6),
/// independently of the parser that decodes it, so that a byte the upstream sends beyond the
/// response it was asked for is seen. Such a byte means the connection is out of step (an upstream
/// that answers twice, or appends junk): it must never carry another exchange, or the next caller
/// would read this one's leftovers as its own answer.
///
/// Pure: it is fed the bytes as they arrive and says whether the response has ended and how many
/// bytes came after its end.
public struct ResponseFramer: Sendable, Equatable {
    /// Where the response stands after the bytes fed so far.
    public enum Progress: Sendable, Equatable {
        /// More bytes belong to this response.
        case inMessage
        /// The response ended; `extraBytes` arrived after its end (0 for a clean end).
        case ended(extraBytes: Int)
        /// The bytes are not a response this framer can delimit (conflicting lengths, a bad chunk
        /// size, an upgrade, a head over the limit): the connection must not be reused.
        case invalid
    }

    /// A response head larger than this is not delimited (the decoder refuses such heads too).
    public static let maxHeadBytes = 256 * 1024

    private enum State: Sendable, Equatable {
        /// Reading a head: the current line's bytes and whether the status line was seen.
        case head(line: [UInt8], sawStatusLine: Bool, status: Int, lengths: [UInt64], transferEncoding: String?)
        case fixedBody(remaining: UInt64)
        /// A chunk-size line: the size so far, whether a digit was seen, in an extension, CR seen.
        case chunkSize(size: UInt64, digits: Int, inExtension: Bool)
        case chunkData(remaining: UInt64)
        /// The CRLF that ends a chunk's data.
        case chunkDataEnd(sawCR: Bool)
        /// Trailer fields after the last chunk, until an empty line: the current line's length.
        case trailers(lineLength: Int)
        /// No length: the response ends when the connection closes.
        case untilClose
        case ended(extraBytes: Int)
        case invalid
    }

    private var state: State
    private var headBytes = 0
    private let requestWasHead: Bool

    /// - Parameter requestMethodIsHEAD: the request was `HEAD`, so the response has no body
    ///   whatever its head says.
    public init(requestMethodIsHEAD: Bool) {
        self.requestWasHead = requestMethodIsHEAD
        self.state = .head(line: [], sawStatusLine: false, status: 0, lengths: [], transferEncoding: nil)
    }

    public var progress: Progress {
        switch state {
        case .ended(let extra): return .ended(extraBytes: extra)
        case .invalid: return .invalid
        default: return .inMessage
        }
    }

    /// Feeds the next bytes read from the connection.
    @discardableResult
    public mutating func consume(_ bytes: some Collection<UInt8>) -> Progress {
        var index = bytes.startIndex
        while index != bytes.endIndex {
            switch state {
            case .ended(let extra):
                state = .ended(extraBytes: extra + bytes.distance(from: index, to: bytes.endIndex))
                return progress
            case .invalid, .untilClose:
                return progress
            case .fixedBody(let remaining):
                let available = UInt64(bytes.distance(from: index, to: bytes.endIndex))
                let taken = min(available, remaining)
                index = bytes.index(index, offsetBy: Int(taken))
                state = remaining == taken ? .ended(extraBytes: 0) : .fixedBody(remaining: remaining - taken)
            case .chunkData(let remaining):
                let available = UInt64(bytes.distance(from: index, to: bytes.endIndex))
                let taken = min(available, remaining)
                index = bytes.index(index, offsetBy: Int(taken))
                state = remaining == taken ? .chunkDataEnd(sawCR: false) : .chunkData(remaining: remaining - taken)
            default:
                step(bytes[index])
                index = bytes.index(after: index)
            }
        }
        return progress
    }

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")

    /// One byte of a head, a chunk-size line, a chunk's CRLF or the trailers.
    private mutating func step(_ byte: UInt8) {
        switch state {
        case .head(var line, let sawStatus, let status, let lengths, let te):
            headBytes += 1
            guard headBytes <= Self.maxHeadBytes else {
                state = .invalid
                return
            }
            guard byte == Self.lf else {
                line.append(byte)
                state = .head(
                    line: line, sawStatusLine: sawStatus, status: status, lengths: lengths, transferEncoding: te)
                return
            }
            if line.last == Self.cr { line.removeLast() }
            if !sawStatus {
                // Empty lines before a status line are skipped, as parsers do.
                if line.isEmpty {
                    state = .head(line: [], sawStatusLine: false, status: 0, lengths: [], transferEncoding: nil)
                    return
                }
                guard let code = Self.statusCode(line) else {
                    state = .invalid
                    return
                }
                state = .head(line: [], sawStatusLine: true, status: code, lengths: [], transferEncoding: nil)
            } else if line.isEmpty {
                headEnded(status: status, lengths: lengths, transferEncoding: te)
            } else {
                var lengths = lengths
                var te = te
                guard Self.readField(line, lengths: &lengths, transferEncoding: &te) else {
                    state = .invalid
                    return
                }
                state = .head(line: [], sawStatusLine: true, status: status, lengths: lengths, transferEncoding: te)
            }
        case .chunkSize(let size, let digits, let inExtension):
            if byte == Self.lf {
                guard digits > 0 else {
                    state = .invalid
                    return
                }
                state = size == 0 ? .trailers(lineLength: 0) : .chunkData(remaining: size)
            } else if byte == Self.cr || inExtension {
                state = .chunkSize(size: size, digits: digits, inExtension: inExtension || byte == Self.cr)
            } else if byte == UInt8(ascii: ";") || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                guard digits > 0 else {
                    state = .invalid
                    return
                }
                state = .chunkSize(size: size, digits: digits, inExtension: true)
            } else if let value = Self.hexValue(byte), digits < 16 {
                state = .chunkSize(size: size << 4 | UInt64(value), digits: digits + 1, inExtension: false)
            } else {
                state = .invalid
            }
        case .chunkDataEnd(let sawCR):
            if byte == Self.lf {
                state = .chunkSize(size: 0, digits: 0, inExtension: false)
            } else if byte == Self.cr && !sawCR {
                state = .chunkDataEnd(sawCR: true)
            } else {
                state = .invalid
            }
        case .trailers(let length):
            if byte == Self.lf {
                state = length == 0 ? .ended(extraBytes: 0) : .trailers(lineLength: 0)
            } else if byte == Self.cr {
                state = .trailers(lineLength: length)
            } else {
                state = .trailers(lineLength: length + 1)
            }
        default:
            break
        }
    }

    private mutating func headEnded(status: Int, lengths: [UInt64], transferEncoding: String?) {
        // An interim response (100 Continue, 103 Early Hints) is followed by the final one.
        if (100..<200).contains(status) {
            // A protocol switch ends HTTP on this connection.
            if status == 101 {
                state = .invalid
                return
            }
            state = .head(line: [], sawStatusLine: false, status: 0, lengths: [], transferEncoding: nil)
            return
        }
        if requestWasHead || status == 204 || status == 304 {
            state = .ended(extraBytes: 0)
            return
        }
        if let coding = transferEncoding {
            // Both framings at once is how responses are smuggled: never reused.
            if !lengths.isEmpty {
                state = .invalid
                return
            }
            let last = coding.split(separator: ",").last.map { String($0).trimmedOWS.lowercased() }
            state = last == "chunked" ? .chunkSize(size: 0, digits: 0, inExtension: false) : .untilClose
            return
        }
        guard let length = lengths.first else {
            state = .untilClose
            return
        }
        guard lengths.allSatisfy({ $0 == length }) else {
            state = .invalid
            return
        }
        state = length == 0 ? .ended(extraBytes: 0) : .fixedBody(remaining: length)
    }

    /// `HTTP/1.x NNN ...`: the status code.
    private static func statusCode(_ line: [UInt8]) -> Int? {
        guard line.count >= 12, line.starts(with: Array("HTTP/1.".utf8)), line[8] == UInt8(ascii: " ") else {
            return nil
        }
        var code = 0
        for byte in line[9..<12] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            code = code * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return code
    }

    /// Records a `Content-Length` or `Transfer-Encoding` field; false for a malformed length.
    private static func readField(_ line: [UInt8], lengths: inout [UInt64], transferEncoding: inout String?) -> Bool {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            // A continuation line (obsolete folding) or junk: the decoder decides; nothing to read here.
            return true
        }
        let name = String(decoding: line[..<colon], as: UTF8.self).lowercased()
        let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmedOWS
        switch name {
        case "content-length":
            for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                let part = String(part).trimmedOWS
                guard !part.isEmpty, part.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = UInt64(part) else {
                    return false
                }
                lengths.append(n)
            }
        case "transfer-encoding":
            transferEncoding = transferEncoding.map { $0 + ", " + value } ?? value
        default:
            break
        }
        return true
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension String {
    /// Without leading and trailing spaces and tabs (RFC 9110 optional white space).
    fileprivate var trimmedOWS: String {
        let isOWS: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isOWS($0) }), let last = lastIndex(where: { !isOWS($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
