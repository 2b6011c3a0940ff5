/// Maps TOML key paths to the line they are written on.
///
/// The TOML parser gives positions only for syntax errors, so this scans the text once for table
/// headers and `key =` lines, keeping count of `[[array]]` tables, to say where a value came from.
/// Paths look like `proxy.listen`, `external_credential[0].principal[1].client_id`.
struct TOMLLineIndex {
    private(set) var lines: [String: Int] = [:]

    init(text: String) {
        var table: [String] = []  // current table path, each element already indexed
        var arrayCounts: [String: Int] = [:]  // "external_credential[0].principal" -> count so far
        var lineNumber = 0
        var pendingDepth = 0  // open brackets/braces of a multi-line value
        var inMultiline: String? = nil  // """ or '''

        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.trimming(" \t\r")
            if let delimiter = inMultiline {
                if line.contains(delimiter) { inMultiline = nil }
                continue
            }
            if pendingDepth > 0 {
                pendingDepth += Self.bracketBalance(line)
                continue
            }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("[[") {
                let name = Self.headerName(line, open: 2)
                let parentPath = Self.resolve(name.dropLast(), from: [], counts: arrayCounts)
                let key = (parentPath + [name.last ?? ""]).joined(separator: ".")
                let index = arrayCounts[key, default: 0]
                arrayCounts[key] = index + 1
                table = parentPath + ["\(name.last ?? "")[\(index)]"]
                if lines[key] == nil { lines[key] = lineNumber }
                lines[table.joined(separator: ".")] = lines[table.joined(separator: ".")] ?? lineNumber
                continue
            }
            if line.hasPrefix("[") {
                let name = Self.headerName(line, open: 1)
                table = Self.resolve(name, from: [], counts: arrayCounts)
                lines[table.joined(separator: ".")] = lines[table.joined(separator: ".")] ?? lineNumber
                continue
            }
            guard let eq = Self.assignmentIndex(line) else { continue }
            let keyParts = Self.splitKey(String(line[..<eq]))
            let path = (table + keyParts).joined(separator: ".")
            if lines[path] == nil { lines[path] = lineNumber }
            let value = line[line.index(after: eq)...].trimming(" \t")
            for delimiter in ["\"\"\"", "'''"] where value.hasPrefix(delimiter) {
                if !value.dropFirst(3).contains(delimiter) { inMultiline = delimiter }
            }
            if inMultiline == nil {
                let balance = Self.bracketBalance(value)
                if balance > 0 { pendingDepth = balance }
                // Inline table keys share the line of their table.
                if value.hasPrefix("{") { Self.indexInline(value, prefix: path, line: lineNumber, into: &lines) }
            }
        }
    }

    /// The line of `path`, or of its closest ancestor that has one.
    func line(for path: String) -> Int? {
        var candidate = path
        while true {
            if let line = lines[candidate] { return line }
            if let dot = candidate.lastIndex(of: ".") {
                candidate = String(candidate[..<dot])
            } else if let bracket = candidate.lastIndex(of: "[") {
                candidate = String(candidate[..<bracket])
                if lines[candidate] == nil { return nil }
            } else {
                return nil
            }
        }
    }

    // MARK: - Scanning helpers

    private static func headerName(_ line: String, open: Int) -> [String] {
        var inner = line.dropFirst(open)
        if let close = inner.firstIndex(of: "]") { inner = inner[..<close] }
        return splitKey(String(inner))
    }

    /// Resolves `a.b.c` so that every array-of-tables prefix names its latest element.
    private static func resolve(_ name: some Sequence<String>, from base: [String], counts: [String: Int])
        -> [String]
    {
        var out = base
        for part in name {
            let key = (out + [part]).joined(separator: ".")
            if let count = counts[key], count > 0 {
                out.append("\(part)[\(count - 1)]")
            } else {
                out.append(part)
            }
        }
        return out
    }

    static func splitKey(_ key: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var quote: Character? = nil
        for ch in key {
            if let q = quote {
                if ch == q { quote = nil } else { current.append(ch) }
            } else if ch == "\"" || ch == "'" {
                quote = ch
            } else if ch == "." {
                parts.append(current.trimming(" \t"))
                current = ""
            } else {
                current.append(ch)
            }
        }
        parts.append(current.trimming(" \t"))
        return parts
    }

    /// Position of the `=` of a `key = value` line, ignoring `=` inside quoted keys.
    private static func assignmentIndex(_ line: String) -> String.Index? {
        var quote: Character? = nil
        var i = line.startIndex
        while i < line.endIndex {
            let ch = line[i]
            if let q = quote {
                if ch == q { quote = nil }
            } else if ch == "\"" || ch == "'" {
                quote = ch
            } else if ch == "=" {
                return i
            } else if ch == "#" {
                return nil
            }
            i = line.index(after: i)
        }
        return nil
    }

    /// Net count of `[`/`{` over `]`/`}` outside strings and comments.
    private static func bracketBalance(_ text: String) -> Int {
        var balance = 0
        _ = scanOutsideStrings(text) { ch in
            switch ch {
            case "[", "{": balance += 1
            case "]", "}": balance -= 1
            case "#": return false
            default: break
            }
            return true
        }
        return balance
    }

    /// Walks one line as TOML: `visit` sees each character outside `"` and `'` strings (with
    /// `\` escapes in `"` strings) and returns false to stop. Returns the quote and 1-based
    /// column of a string still open where the walk ended.
    static func scanOutsideStrings(_ text: String, _ visit: (Character) -> Bool) -> (quote: Character, column: Int)? {
        var open: (quote: Character, column: Int)? = nil
        var escaped = false
        var column = 0
        for ch in text {
            column += 1
            if let q = open?.quote {
                if escaped {
                    escaped = false
                } else if ch == "\\" && q == "\"" {
                    escaped = true
                } else if ch == q {
                    open = nil
                }
            } else if ch == "\"" || ch == "'" {
                open = (ch, column)
            } else if !visit(ch) {
                break
            }
        }
        return open
    }

    private static func indexInline(_ value: String, prefix: String, line: Int, into lines: inout [String: Int]) {
        // Shallow: `{ A = "x", B = "y" }` gives prefix.A and prefix.B.
        let body = value.dropFirst().prefix { $0 != "}" }
        for item in body.split(separator: ",") {
            guard let eq = item.firstIndex(of: "=") else { continue }
            let key = splitKey(String(item[..<eq])).joined(separator: ".")
            if lines["\(prefix).\(key)"] == nil { lines["\(prefix).\(key)"] = line }
        }
    }
}

extension StringProtocol {
    func trimming(_ set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
