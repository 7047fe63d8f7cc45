import CoopFormats
import Foundation

/// The lines of an image's `config` / `config-user` that may reach a container's config: an allow-list
/// of keys an image legitimately sets, each with a value of a strict form. Everything else (hooks, mount
/// entries and fstabs, other includes, rootfs, idmap, network, seccomp, AppArmor, unknown keys) is
/// dropped, because `lxc-start` on the container would obey it on the host.
public enum ImageConfigFilter {
    /// The folder of LXC's distro configs (`LXC_TEMPLATE_CONFIG`): the only files an image may include.
    static let templateFolder = ContainerConfig.lxcTemplateConfig

    public struct Result: Equatable, Sendable {
        /// The entries to write, in the image's order.
        public var kept: [LXCConfig.Entry]
        /// The keys (or line starts) that were dropped, for the warning.
        public var dropped: [String]
    }

    public static func filter(_ text: String) -> Result {
        filter(LXCConfig(parsing: text))
    }

    public static func filter(_ config: LXCConfig) -> Result {
        var result = Result(kept: [], dropped: [])
        for line in config.lines {
            switch line {
            case .blank, .comment:
                continue
            case .other(let text):
                result.dropped.append(String(text.prefix(40)))
            case .entry(let entry):
                let value = entry.value.replacingOccurrences(of: "LXC_TEMPLATE_CONFIG", with: templateFolder)
                if !LXCConfig.hasControlCharacters(entry.key + value), isAllowed(key: entry.key, value: value) {
                    result.kept.append(LXCConfig.Entry(key: entry.key, value: value))
                } else {
                    result.dropped.append(String(entry.key.prefix(40)))
                }
            }
        }
        return result
    }

    /// Whether `key = value` is one an image may set.
    static func isAllowed(key: String, value: String) -> Bool {
        switch key {
        case "lxc.include":
            return isDistroInclude(value)
        case "lxc.arch":
            return matches(value, extra: "_")
        case "lxc.tty.max", "lxc.pty.max":
            return !value.isEmpty && value.count <= 6 && value.allSatisfy { $0.isASCII && $0.isNumber }
        case "lxc.autodev":
            return value == "0" || value == "1"
        case "lxc.signal.halt", "lxc.signal.reboot", "lxc.signal.stop":
            return matches(value, extra: "+-")
        case "lxc.cap.drop":
            // Dropping capabilities only takes away.
            return value.split(separator: " ").allSatisfy { matches(String($0), extra: "_") }
        case "lxc.cgroup.devices.deny", "lxc.cgroup2.devices.deny":
            // Denying devices only takes away; allowing them is for the container's owner to decide.
            return matches(value, extra: " *:")
        case "lxc.mount.auto":
            // proc, sys and cgroup inside the container; `shmounts:` would name a host path.
            return value.split(separator: " ").allSatisfy { token in
                let parts = token.split(separator: ":", omittingEmptySubsequences: false)
                return ["proc", "sys", "cgroup", "cgroup-full"].contains(String(parts[0]))
                    && parts.dropFirst().allSatisfy { matches(String($0), extra: "-") }
            }
        case "lxc.init.cmd", "lxc.environment":
            // Run and set inside the container, which is the image's anyway.
            return !value.isEmpty
        default:
            return false
        }
    }

    /// `/usr/share/lxc/config/common.conf`, `userns.conf`, `DISTRO.common.conf`, `DISTRO.userns.conf`.
    static func isDistroInclude(_ value: String) -> Bool {
        let prefix = templateFolder + "/"
        guard value.hasPrefix(prefix) else { return false }
        let name = String(value.dropFirst(prefix.count))
        guard name.hasSuffix("common.conf") || name.hasSuffix("userns.conf") else { return false }
        let distro = name.dropLast("common.conf".count)
        guard distro.isEmpty || (distro.hasSuffix(".") && distro.count > 1) else { return false }
        return matches(String(distro.dropLast(distro.isEmpty ? 0 : 1)), extra: "-_", allowEmpty: true)
    }

    /// Letters and digits, plus `extra`.
    static func matches(_ text: String, extra: String, allowEmpty: Bool = false) -> Bool {
        (allowEmpty || !text.isEmpty)
            && text.unicodeScalars.allSatisfy {
                ($0.isASCII && CharacterSet.alphanumerics.contains($0)) || extra.unicodeScalars.contains($0)
            }
    }
}
