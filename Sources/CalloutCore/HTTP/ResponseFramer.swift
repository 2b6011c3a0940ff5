/// Finds where one HTTP/1.1 response ends in the raw bytes of an upstream connection (RFC 9112 §6),
/// independently of the parser that decodes it, so that a byte the upstream sends beyond the
/// response it was asked for is seen. Such a byte means the connection is out of step (an upstream
/// that answers twice, or appends junk): it must never carry another exchange, or the next caller
/// would read this one's leftovers as its own answer.
///
/// Pure: it is fed the bytes as they arrive and says whether the response has ended and how many
/// bytes came after its end. Bodies are skipped by length, heads scanned line by line; a line is
/// copied only when it spans two reads.
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
        /// Reading a head (see the `head…` properties).
        case head
        case fixedBody(remaining: UInt64)
        /// A chunk-size line: the size so far, how many digits, whether in an extension.
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

    private var state = State.head
    private let requestWasHead: Bool
    // The head being read.
    private var headBytes = 0
    /// The start of a line whose end has not arrived yet.
    private var partialLine: [UInt8] = []
    private var sawStatusLine = false
    private var status = 0
    /// The first `Content-Length` seen, and whether any other one differed from it (kept as two
    /// values: a list of lengths would be an allocation per response).
    private var contentLength: UInt64?
    private var lengthsDiffer = false
    private var transferEncoding: String?

    /// - Parameter requestMethodIsHEAD: the request was `HEAD`, so the response has no body
    ///   whatever its head says.
    public init(requestMethodIsHEAD: Bool) {
        self.requestWasHead = requestMethodIsHEAD
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
        Array(bytes).withUnsafeBytes { consume($0) }
    }

    /// Feeds the next bytes read from the connection.
    @discardableResult
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) -> Progress {
        var index = 0
        let count = bytes.count
        while index < count {
            switch state {
            case .ended(let extra):
                state = .ended(extraBytes: extra + count - index)
                return progress
            case .invalid, .untilClose:
                return progress
            case .head:
                index = scanHead(bytes, from: index)
            case .fixedBody(let remaining):
                let taken = min(UInt64(count - index), remaining)
                index += Int(taken)
                state = remaining == taken ? .ended(extraBytes: 0) : .fixedBody(remaining: remaining - taken)
            case .chunkData(let remaining):
                let taken = min(UInt64(count - index), remaining)
                index += Int(taken)
                state = remaining == taken ? .chunkDataEnd(sawCR: false) : .chunkData(remaining: remaining - taken)
            default:
                step(bytes[index])
                index += 1
            }
        }
        return progress
    }

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")
    private static let space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t")

    /// Reads head lines from `start`; returns where it stopped (the end of the bytes, or the
    /// first byte after the head).
    private mutating func scanHead(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var lineStart = start
        while case .head = state {
            guard let lf = bytes[lineStart...].firstIndex(of: Self.lf) else {
                headBytes += bytes.count - lineStart
                if headBytes > Self.maxHeadBytes {
                    state = .invalid
                } else {
                    partialLine.append(contentsOf: bytes[lineStart...])
                }
                return bytes.count
            }
            headBytes += lf + 1 - lineStart
            guard headBytes <= Self.maxHeadBytes else {
                state = .invalid
                return bytes.count
            }
            if partialLine.isEmpty {
                headLine(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<lf]))
            } else {
                partialLine.append(contentsOf: bytes[lineStart..<lf])
                let line = partialLine
                partialLine = []
                line.withUnsafeBytes { headLine($0) }
            }
            lineStart = lf + 1
        }
        return lineStart
    }

    /// One head line, without its LF.
    private mutating func headLine(_ raw: UnsafeRawBufferPointer) {
        let line = raw.last == Self.cr ? UnsafeRawBufferPointer(rebasing: raw.dropLast()) : raw
        if !sawStatusLine {
            // Empty lines before a status line are skipped, as parsers do.
            if line.isEmpty { return }
            guard let code = Self.statusCode(line) else {
                state = .invalid
                return
            }
            sawStatusLine = true
            status = code
        } else if line.isEmpty {
            headEnded()
        } else if !readField(line) {
            state = .invalid
        }
    }

    /// One byte of a chunk-size line, a chunk's CRLF or the trailers.
    private mutating func step(_ byte: UInt8) {
        switch state {
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
            } else if let value = byte.asciiHexValue, digits < 16 {
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

    private mutating func headEnded() {
        // An interim response (100 Continue, 103 Early Hints) is followed by the final one.
        if (100..<200).contains(status) {
            // A protocol switch ends HTTP on this connection.
            if status == 101 {
                state = .invalid
                return
            }
            sawStatusLine = false
            contentLength = nil
            lengthsDiffer = false
            transferEncoding = nil
            return
        }
        if requestWasHead || status == 204 || status == 304 {
            state = .ended(extraBytes: 0)
            return
        }
        if let coding = transferEncoding {
            // Both framings at once is how responses are smuggled: never reused.
            if contentLength != nil {
                state = .invalid
                return
            }
            let last = coding.split(separator: ",").last.map { Self.trimmed(Substring($0)).lowercased() }
            state = last == "chunked" ? .chunkSize(size: 0, digits: 0, inExtension: false) : .untilClose
            return
        }
        guard let length = contentLength else {
            state = .untilClose
            return
        }
        guard !lengthsDiffer else {
            state = .invalid
            return
        }
        state = length == 0 ? .ended(extraBytes: 0) : .fixedBody(remaining: length)
    }

    /// `HTTP/1.x NNN ...`: the status code.
    private static func statusCode(_ line: UnsafeRawBufferPointer) -> Int? {
        guard line.count >= 12, line.starts(with: "HTTP/1.".utf8), line[8] == UInt8(ascii: " ") else { return nil }
        var code = 0
        for byte in line[9..<12] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            code = code * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return code
    }

    /// Whether `line` starts with `name` (lower-case ASCII) followed by a colon, in any case.
    private static func isField(_ line: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        let length = name.utf8CodeUnitCount
        guard line.count > length, line[length] == UInt8(ascii: ":") else { return false }
        let expected = UnsafeBufferPointer(start: name.utf8Start, count: length)
        for i in 0..<length where line[i] | 0x20 != expected[i] {
            return false
        }
        return true
    }

    /// Records a `Content-Length` or `Transfer-Encoding` field; false for a malformed length.
    private mutating func readField(_ line: UnsafeRawBufferPointer) -> Bool {
        if Self.isField(line, "content-length") {
            return readContentLength(line, from: "content-length".utf8.count + 1)
        } else if Self.isField(line, "transfer-encoding") {
            let value = Self.trimmed(
                Substring(String(decoding: line[("transfer-encoding".utf8.count + 1)...], as: UTF8.self)))
            transferEncoding = transferEncoding.map { $0 + ", " + value } ?? value
        }
        // Any other field, or a continuation line (obsolete folding): the decoder decides.
        return true
    }

    /// A `Content-Length` value read on its bytes: one or more lengths separated by commas, each
    /// digits only between optional spaces and tabs; an empty part, any other byte or a length
    /// past `UInt64` makes the field invalid.
    private mutating func readContentLength(_ line: UnsafeRawBufferPointer, from start: Int) -> Bool {
        var i = start
        let end = line.count
        while true {
            while i < end, line[i] == Self.space || line[i] == Self.tab { i += 1 }
            var n: UInt64 = 0
            var digits = 0
            while i < end, line[i] >= 48, line[i] <= 57 {
                let (times10, o1) = n.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(UInt64(line[i] - 48))
                if o1 || o2 { return false }
                n = sum
                digits += 1
                i += 1
            }
            guard digits > 0 else { return false }
            while i < end, line[i] == Self.space || line[i] == Self.tab { i += 1 }
            if let first = contentLength {
                if n != first { lengthsDiffer = true }
            } else {
                contentLength = n
            }
            if i == end { return true }
            guard line[i] == UInt8(ascii: ",") else { return false }
            i += 1
        }
    }

    /// Without leading and trailing spaces and tabs (RFC 9110 optional white space).
    private static func trimmed(_ text: Substring) -> String {
        let isOWS: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = text.firstIndex(where: { !isOWS($0) }), let last = text.lastIndex(where: { !isOWS($0) })
        else { return "" }
        return String(text[first...last])
    }

}
