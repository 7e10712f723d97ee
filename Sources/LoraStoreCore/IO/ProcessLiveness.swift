#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Whether a process of this machine still runs, for telling an abandoned staging folder or temporary file
/// from one being written.
enum ProcessLiveness {
    /// Whether `pid` names no running process: none at all, or a zombie (exited, not yet reaped by its
    /// parent: `timeout -s KILL lorastore pull ...` leaves one while `timeout` itself dies too), which
    /// writes nothing more.
    static func hasExited(_ pid: pid_t) -> Bool {
        guard pid > 0 else { return false }
        // EPERM: another user's process, whose state /proc still shows.
        if kill(pid, 0) != 0, errno != EPERM { return errno == ESRCH }
        #if os(Linux)
        // `/proc/PID/stat` is `PID (COMMAND) STATE ...`; the command may hold spaces and parentheses.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first == "Z"
        #else
        return false
        #endif
    }
}
