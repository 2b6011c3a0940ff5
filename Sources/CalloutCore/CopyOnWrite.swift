/// A value kept in one shared object until it is changed: copying it costs one reference count,
/// however many strings and arrays it holds, and a change copies it first only when it is shared.
///
/// The configuration and token values a callout hands around (routing, its plan, its token
/// demand) keep their fields in one, so each hand-over is a retain rather than a retain of every
/// field.
public struct CopyOnWrite<Value: Sendable>: Sendable {
    @usableFromInline
    final class Box: @unchecked Sendable {
        // Changed only while uniquely referenced (see `value`'s modify), so sharing it across
        // threads is safe.
        @usableFromInline var value: Value
        @usableFromInline init(_ value: Value) { self.value = value }
    }
    @usableFromInline var box: Box

    @inlinable
    public init(_ value: Value) { box = Box(value) }

    @inlinable
    public var value: Value {
        _read { yield box.value }
        _modify {
            if !isKnownUniquelyReferenced(&box) { box = Box(box.value) }
            yield &box.value
        }
    }

    /// Whether both hold the very same object (then their values are equal without comparing).
    @inlinable
    public func isIdentical(to other: Self) -> Bool { box === other.box }
}
