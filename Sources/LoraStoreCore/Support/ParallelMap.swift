import Dispatch

extension Array {
    /// Maps the elements on all cores, keeping the order of results. When transforms throw, the error of
    /// the lowest index is rethrown after every element has been tried.
    func parallelMap<Mapped>(_ transform: (Element) throws -> Mapped) throws -> [Mapped] {
        let results = UnsafeMutableBufferPointer<Result<Mapped, any Error>?>.allocate(capacity: count)
        results.initialize(repeating: nil)
        defer {
            results.deinitialize()
            results.deallocate()
        }
        withoutActuallyEscaping(transform) { transform in
            withUnsafeBufferPointer { elements in
                nonisolated(unsafe) let elements = elements
                nonisolated(unsafe) let results = results
                nonisolated(unsafe) let transform = transform
                DispatchQueue.concurrentPerform(iterations: elements.count) { index in
                    results[index] = Result { try transform(elements[index]) }
                }
            }
        }
        return try results.map { result in
            guard let result else { preconditionFailure("concurrentPerform skipped an index") }
            return try result.get()
        }
    }
}
