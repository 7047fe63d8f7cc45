import CoopFormats
import Foundation

/// What coop remembers of a container beside its LXC config (`coop.json` in its folder).
public struct ContainerRecord: Codable, Sendable {
    public var name: String
    public var image: ImageReference
    public var build: String
    public var createdAt: Int
    /// Entries of the image that were not unpacked (device nodes), as `./path`.
    public var skipped: [String]
    /// The image's template files (`LXC_NAME` and friends filled in), for `coop copy` to fill again.
    public var templates: [String]? = nil
}
