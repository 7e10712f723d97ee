import Foundation

/// Edits of a Hugging Face `config.json` that a merged model's folder needs.
enum ModelConfig {
    /// The configuration with every `dtype` (transformers 5) and `torch_dtype` (earlier) member set to
    /// `type`'s name, the rest of the text as it was; nil when there is nothing to change (no such member,
    /// or already that type, or not a float type a merge writes).
    ///
    /// A build merged with `--dtype` holds tensors of that type; loading it with `dtype="auto"` reads the
    /// type from here, and would convert every weight back to the base's type.
    static func settingDType(of bytes: Data, to type: DType) -> Data? {
        guard let name = type.torchName, let text = String(data: bytes, encoding: .utf8) else { return nil }
        let range = NSRange(text.startIndex..., in: text)
        let edited = dtypeMember.stringByReplacingMatches(
            in: text, range: range, withTemplate: "$1\(NSRegularExpression.escapedTemplate(for: "\"\(name)\""))")
        return edited == text ? nil : Data(edited.utf8)
    }

    /// A `"dtype"` or `"torch_dtype"` member whose value is a plain string (a type's name), up to that value.
    private static let dtypeMember = try! NSRegularExpression(pattern: #"("(?:torch_)?dtype"\s*:\s*)"[A-Za-z0-9_.]*""#)
}
