import Foundation

/// Whether a peer measured through a Python script (PEFT, ZipNN) is part of the run.
enum PythonPeer {
    case off
    /// Run the peer's script with this Python (a virtualenv with the peer's packages).
    case run(python: URL)
    /// Requested, but the Python packages could not be installed; the reason goes into the report.
    case skipped(reason: String)

    /// The results get the peer's columns or rows (measured or marked skipped).
    var isRequested: Bool {
        if case .off = self { false } else { true }
    }

    /// The Python to run the script with, when the peer is measured.
    var python: URL? {
        if case .run(let python) = self { python } else { nil }
    }
}
