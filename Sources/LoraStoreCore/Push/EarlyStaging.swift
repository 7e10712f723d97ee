import Synchronization

/// The new tensor blobs of a push, staged (``BlobBatch/stage(_:digest:encoding:origin:in:)``) as soon as each tensor
/// is hashed, while the others are still being read and checked: the disk writes the first tensors while
/// the CPU hashes the rest, instead of the two taking turns.
///
/// Staged files are temporary files under `tmp/`, outside the store until the push publishes them, so the
/// push still adds nothing before everything is validated; a refused push ``discard()``s them. The pusher
/// holds the maintenance lock shared from the first stage to its commit, so garbage collection sweeps none
/// of them meanwhile. Safe to call from the hashing threads at once.
final class EarlyStaging: Sendable {
    private let blobs: BlobStore
    private let staged = Mutex<[Digest: BlobBatch.Staged]>([:])
    private let stopped = Atomic<Bool>(false)

    init(blobs: BlobStore) {
        self.blobs = blobs
    }

    /// Stages `bytes` (`origin`, for errors) as blob `digest`, unless the store already has its file, it is
    /// staged already (a tensor stored twice in one model), or the push was refused meanwhile (``stop()``).
    func stage(_ bytes: UnsafeRawBufferPointer, digest: Digest, encoding: BlobEncoding, origin: String) throws {
        guard !stopped.load(ordering: .relaxed), staged.withLock({ $0[digest] == nil }),
              blobs.storedSize(of: digest) == nil
        else { return }
        let blob = try BlobBatch.stage(bytes, digest: digest, encoding: encoding, origin: origin, in: blobs)
        let kept = staged.withLock { staged in
            guard staged[digest] == nil else { return false }
            staged[digest] = blob
            return true
        }
        if !kept { BlobBatch.discard([blob]) }
    }

    /// Stages nothing more: the push is refused (a tensor failed its checks), so the other hashing threads
    /// need not write the rest of the model before the refusal is reported.
    func stop() {
        stopped.store(true, ordering: .relaxed)
    }

    /// The blobs staged so far, handed over to the push's publish (which removes their temporary files).
    func take() -> [Digest: BlobBatch.Staged] {
        staged.withLock { staged in
            defer { staged = [:] }
            return staged
        }
    }

    /// Removes the temporary files of the blobs still held, after a refused or failed push.
    func discard() {
        BlobBatch.discard(Array(take().values))
    }
}
