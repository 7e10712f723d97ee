import Foundation
import Hummingbird
import LoraStoreCore

/// Answers a request for one file or blob: `ETag` (its SHA-256), `Content-Length`, `Accept-Ranges`, and
/// for a `Range: bytes=...` request a 206 with that range (416 when it lies outside the file). Bytes are
/// read from blobs as they are sent, never copied to disk; a build's hold is kept until the last byte is
/// written, so eviction cannot delete blobs under a download.
struct FileResponder: Sendable {
    let store: Store
    let metrics: RegistryMetrics

    func response(
        for file: ServedFile, digest: Digest, request: Request, headers extra: HTTPFields = [:], holding hold: BuildHold? = nil
    ) throws -> Response {
        var headers = extra
        headers[.eTag] = "\"\(digest.hex)\""
        headers[.acceptRanges] = "bytes"
        headers[.contentType] = "application/octet-stream"
        var status = HTTPResponse.Status.ok
        var range = 0..<file.size
        if let header = request.headers[.range] {
            guard let requested = Self.parseRange(header, size: file.size) else {
                headers[.contentRange] = "bytes */\(file.size)"
                return Response(status: .rangeNotSatisfiable, headers: headers)
            }
            if let requested {
                range = requested
                status = .partialContent
                headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(file.size)"
            }
        }
        // The bytes are read as they are sent, after the status line: a blob missing from a damaged store
        // must fail the request here, while it can still be answered with an error.
        if let missing = file.blobs.first(where: { self.store.blobs.storedSize(of: $0) == nil }) {
            throw BlobStoreError.missing(missing)
        }
        let (store, metrics, sent) = (store, metrics, range)
        let body = ResponseBody(contentLength: sent.count) { writer in
            let reader = ServedFileReader(file, in: store, range: sent)
            while let chunk = try reader.next() {
                try await writer.write(ByteBuffer(bytes: chunk))
                metrics.countDownload(chunk.count)
            }
            try await writer.finish(nil)
            withExtendedLifetime(hold) {}
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// The range a `Range` header asks for: `.some(nil)` when it should be ignored (not a single byte
    /// range), nil when it is unsatisfiable.
    static func parseRange(_ header: String, size: Int) -> Range<Int>?? {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return .some(nil) }
        let spec = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .some(nil) }
        if parts[0].isEmpty {
            // A suffix of an empty file holds no byte to send.
            guard let suffix = Int(parts[1]), suffix > 0, size > 0 else { return nil }
            return .some(max(0, size - suffix)..<size)
        }
        guard let start = Int(parts[0]), start >= 0 else { return .some(nil) }
        guard start < size else { return nil }
        if parts[1].isEmpty { return .some(start..<size) }
        guard let last = Int(parts[1]), last >= start else { return .some(nil) }
        // `last` may be any integer a client sends, up to `Int.max`: clamp before adding one.
        return .some(start..<(min(last, size - 1) + 1))
    }
}
