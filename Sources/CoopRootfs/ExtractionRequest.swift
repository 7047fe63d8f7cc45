import CoopSystem
import Foundation

/// What the extraction child (`coop __extract`) is to do; passed to it as JSON.
public struct ExtractionRequest: Codable, Sendable {
    /// The rootfs folder to create and fill; it must not exist yet.
    public var destination: String
    /// Added to every uid and gid (root unpacking for a container); nil inside a user namespace.
    public var shift: IDMap?
    /// Ids an entry may have: the size of the container's range.
    public var idCount: UInt32
    /// Entries to skip, as `./dev/…` (the image's `excludes-user`).
    public var excludes: [String]
    /// Files in which `LXC_NAME` and friends are replaced after unpacking.
    public var templates: [String]
    public var templateValues: [String: String]
    /// Files written whole after unpacking (an LXD image's templates, rendered for the container): path in
    /// the rootfs to text.
    public var writtenFiles: [String: String] = [:]
    /// An unpacked tree of the same build to copy instead of reading a tar stream (a warm create). Its
    /// templates were filled in for it: `templateValues` then maps its values to the new container's.
    public var copyFrom: String?
    /// The upper layer of a copy-on-write container: of `copyFrom` only the templates are copied (with
    /// their folders, owners and modes), to be filled in for the new container.
    public var templatesOnly = false
    /// Makes the overlay's work folder, `work` beside `destination` (as LXC names it), owned like it.
    public var overlayWork = false
    /// `templateValues` replace only whole names (not inside a longer name or word): the values of a
    /// container copied are its name, which may be short (`a` must not change `localhost`).
    public var wholeNames = false

    public init(
        destination: String, shift: IDMap?, idCount: UInt32, excludes: [String] = [], templates: [String] = [],
        templateValues: [String: String] = [:], copyFrom: String? = nil, templatesOnly: Bool = false,
        overlayWork: Bool = false, wholeNames: Bool = false
    ) {
        self.wholeNames = wholeNames
        self.templatesOnly = templatesOnly
        self.overlayWork = overlayWork
        self.destination = destination
        self.shift = shift
        self.idCount = idCount
        self.excludes = excludes
        self.templates = templates
        self.templateValues = templateValues
        self.copyFrom = copyFrom
    }
}
