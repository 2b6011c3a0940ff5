/// Optional whitespace around header and form values (RFC 9110 §5.6.3: spaces and tabs).
extension String {
    func trimmingSpaces() -> String {
        var view = self[...]
        while let first = view.first, first == " " || first == "\t" { view = view.dropFirst() }
        while let last = view.last, last == " " || last == "\t" { view = view.dropLast() }
        return String(view)
    }
}
