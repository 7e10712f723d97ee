import Logging
import LoraStoreCore
import ServiceLifecycle

/// Gives the merge engine's idle buffers back to the system once no merge has used them for a while
/// (``LoraStoreCore/ScratchBuffer/releaseIdleBuffers(unusedFor:)``): after materializing a build of large
/// tensors a registry would otherwise hold that memory, gigabytes, for as long as it runs.
struct IdleBufferRelease: Service {
    /// How long the buffers stay unused before they go, and how often that is checked.
    let idleTime: Duration
    let logger: Logger

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while true {
                    try await Task.sleep(for: idleTime)
                    let released = ScratchBuffer.releaseIdleBuffers(unusedFor: idleTime)
                    if released > 0 {
                        logger.info("released \(released) bytes of merge buffers unused for \(idleTime)")
                    }
                }
            }
        } catch is CancellationError {
            // Shutting down: nothing left to release for.
        }
    }
}
