import Foundation
import Hummingbird
import LoraStoreCore

/// An error answered as JSON `{"error": {"code": CODE, "message": MESSAGE}}`, with a stable code for
/// programs and a message for people. On the Hugging Face endpoints the `X-Error-Code` header carries the
/// code Hugging Face clients understand (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`).
public struct RegistryError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    /// A stable upper-case code, documented in API.md.
    public var code: String
    public var message: String
    /// The Hugging Face `X-Error-Code`, on the Hugging Face endpoints.
    public var hubCode: String?
    /// More headers for the answer (the Hub's `X-Repo-Commit` on a missing file).
    public var extraHeaders: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, code: String, message: String, hubCode: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.hubCode = hubCode
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = extraHeaders
        headers[.contentType] = "application/json"
        if let hubCode {
            headers[.xErrorCode] = hubCode
            headers[.xErrorMessage] = message
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let json = try encoder.encode(ErrorBody(error: .init(code: code, message: message)))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: json)))
    }

    /// The JSON of an error answer.
    private struct ErrorBody: Encodable {
        struct Detail: Encodable {
            var code: String
            var message: String
        }
        var error: Detail
    }

    static func unauthorized(_ message: String = "this request needs a token: send Authorization: Bearer TOKEN") -> RegistryError {
        RegistryError(.unauthorized, code: "UNAUTHORIZED", message: message)
    }

    static func forbidden(_ message: String) -> RegistryError {
        RegistryError(.forbidden, code: "FORBIDDEN", message: message)
    }

    static func badRequest(_ message: String) -> RegistryError {
        RegistryError(.badRequest, code: "BAD_REQUEST", message: message)
    }

    static func notFound(_ message: String, hubCode: String? = nil) -> RegistryError {
        RegistryError(.notFound, code: "NOT_FOUND", message: message, hubCode: hubCode)
    }

    /// 507: the server cannot store what the request needs.
    static let insufficientStorage = HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage")

    /// What a client hears when the registry's disk is full: a state its operator fixes, said without the
    /// server's paths (the log has them).
    static let storageFull = "the registry's disk is full: this request stored nothing usable (blobs uploaded "
        + "before stay until a manifest uses them or gc removes them); ask its operator to free space and try again"

    /// The answer for an error thrown by the store or by request parsing.
    init(translating error: any Error) {
        switch error {
        case let error as RegistryError:
            self = error
        case let error as ReferenceError:
            self.init(.badRequest, code: "INVALID_REFERENCE", message: error.description)
        case let error as ReceiveError:
            switch error {
            case .digestMismatch: self.init(.badRequest, code: "DIGEST_MISMATCH", message: error.description)
            case .truncated: self.init(.badRequest, code: "TRUNCATED", message: error.description)
            case .tooLarge: self.init(.contentTooLarge, code: "TOO_LARGE", message: error.description)
            case .invalidManifest: self.init(.badRequest, code: "INVALID_MANIFEST", message: error.description)
            case .missingBlobs: self.init(.badRequest, code: "MISSING_BLOBS", message: error.description)
            case .unsafeName: self.init(.badRequest, code: "UNSAFE_NAME", message: error.description)
            }
        case let error as StoreError:
            switch error {
            case .notFound: self.init(.notFound, code: "NOT_FOUND", message: error.description)
            case .wrongKind: self.init(.badRequest, code: "WRONG_KIND", message: error.description)
            case .repositoryKind, .inUse: self.init(.conflict, code: "CONFLICT", message: error.description)
            case .baseRequired: self.init(.badRequest, code: "BASE_REQUIRED", message: error.description)
            case .adapterForOtherBase: self.init(.badRequest, code: "OTHER_BASE", message: error.description)
            case .invalidInput, .adapterMismatch, .nonFinite, .mergeRefused, .nonFiniteResult:
                self.init(.badRequest, code: "INVALID_INPUT", message: error.description)
            case .evictedWhileServing: self.init(.serviceUnavailable, code: "BUSY", message: error.description)
            case .maintenanceBusy(let waited):
                self.init(.serviceUnavailable, code: "BUSY", message: error.description)
                // The collection had run at least this long already: ask for as long again, in whole seconds.
                let (seconds, fraction) = waited.components
                extraHeaders[.retryAfter] = String(max(1, seconds + (fraction > 0 ? 1 : 0)))
            case .newerSchema, .damagedIndex, .rebuildMismatch, .rebuildTensorsDiffer, .engineChanged, .incompleteCollection:
                self.init(.internalServerError, code: "INTERNAL", message: error.description)
            }
        case let error as SafetensorsError:
            self.init(.badRequest, code: "INVALID_INPUT", message: "\(error)")
        case let error as HTTPError:
            let code = switch error.status.code {
            case 404: "NOT_FOUND"
            case 413: "TOO_LARGE"
            case 500...: "INTERNAL"
            default: "BAD_REQUEST"
            }
            self.init(error.status, code: code, message: error.body ?? error.status.reasonPhrase)
        case let error as DecodingError:
            self.init(
                .badRequest, code: "BAD_REQUEST",
                message: "the request body is not the JSON this endpoint takes: \(error.explanation)")
        case let error where (error as? FileAccessError)?.isOutOfSpace == true || StoreIndex.isFull(error):
            self.init(Self.insufficientStorage, code: "STORAGE_FULL", message: Self.storageFull)
        case let error where StoreIndex.isBusy(error):
            // Another process kept the index's write lock for longer than the index waits: passing, so the
            // client may try again (the CLI retries BUSY answers).
            self.init(
                .serviceUnavailable, code: "BUSY",
                message: "the store's index is busy with another process's write; try again shortly")
            extraHeaders[.retryAfter] = "5"
        default:
            // Anything else is the server's fault (a file it could not read, the index); its description may
            // name paths on the server, so it goes to the log (see `ErrorMiddleware`), not to the client.
            self.init(.internalServerError, code: "INTERNAL", message: "the server failed to answer; its log says why")
        }
    }
}
