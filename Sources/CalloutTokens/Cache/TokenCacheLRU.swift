/// Keyed storage with an intrusive least-recently-used list over a slab of slots: every
/// operation is one dictionary look-up plus a few index writes, never a scan.
struct TokenCacheLRU<Value> {
    fileprivate struct Slot {
        var key: TokenCacheKey
        var value: Value?
        var previous: Int  // towards most recently used; -1 for none
        var next: Int  // towards least recently used; -1 for none
        var usedAt: Double  // when it was last touched, on the cache's clock
    }

    private var index: [TokenCacheKey: Int] = [:]
    private var slots: [Slot] = []
    private var freeSlots: [Int] = []
    private var head = -1  // most recently used
    private var tail = -1  // least recently used

    var count: Int { index.count }

    func slot(for key: TokenCacheKey) -> Int? { index[key] }

    /// The value at a slot; the slot must be live.
    subscript(slot: Int) -> Value {
        get { slots[slot].value! }
        set { slots[slot].value = newValue }
    }

    /// Takes the value out of a live slot so it can be mutated without copying its storage;
    /// put it back with the setter.
    mutating func take(_ slot: Int) -> Value {
        let value = slots[slot].value!
        slots[slot].value = nil
        return value
    }

    func key(at slot: Int) -> TokenCacheKey { slots[slot].key }

    /// When a live slot was last inserted or touched.
    func usedAt(_ slot: Int) -> Double { slots[slot].usedAt }

    /// Marks a slot most recently used, at `now`.
    mutating func touch(_ slot: Int, now: Double) {
        slots[slot].usedAt = now
        guard head != slot else { return }
        unlink(slot)
        pushFront(slot)
    }

    /// Inserts a new key as most recently used; the key must be absent.
    mutating func insert(_ key: TokenCacheKey, _ value: Value, now: Double) -> Int {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            slots[slot] = Slot(key: key, value: value, previous: -1, next: -1, usedAt: now)
        } else {
            slot = slots.count
            slots.append(Slot(key: key, value: value, previous: -1, next: -1, usedAt: now))
        }
        index[key] = slot
        pushFront(slot)
        return slot
    }

    @discardableResult
    mutating func remove(_ slot: Int) -> Value? {
        unlink(slot)
        index.removeValue(forKey: slots[slot].key)
        let value = slots[slot].value
        slots[slot].value = nil
        freeSlots.append(slot)
        return value
    }

    /// The least recently used slot whose value passes `evictable`, walking from the tail.
    func leastRecentlyUsed(where evictable: (Value) -> Bool) -> Int? {
        var slot = tail
        while slot != -1 {
            if let value = slots[slot].value, evictable(value) { return slot }
            slot = slots[slot].previous
        }
        return nil
    }

    /// Live slots from most to least recently used.
    var slotsInOrder: [Int] {
        var result: [Int] = []
        result.reserveCapacity(index.count)
        var slot = head
        while slot != -1 {
            result.append(slot)
            slot = slots[slot].next
        }
        return result
    }

    private mutating func unlink(_ slot: Int) {
        let previous = slots[slot].previous
        let next = slots[slot].next
        if previous != -1 { slots[previous].next = next } else if head == slot { head = next }
        if next != -1 { slots[next].previous = previous } else if tail == slot { tail = previous }
        slots[slot].previous = -1
        slots[slot].next = -1
    }

    private mutating func pushFront(_ slot: Int) {
        slots[slot].previous = -1
        slots[slot].next = head
        if head != -1 { slots[head].previous = slot }
        head = slot
        if tail == -1 { tail = slot }
    }
}
extension TokenCacheLRU: Sendable where Value: Sendable {}
extension TokenCacheLRU.Slot: Sendable where Value: Sendable {}
