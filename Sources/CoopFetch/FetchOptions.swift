import CoopStore
import Foundation

public struct FetchOptions: Sendable {
    /// Use only what is cached; never touch the network.
    public var forceCache = false
    /// Download again and replace the cached build.
    public var flushCache = false
    /// Check signatures; off only by the user's explicit `--no-verify`.
    public var verify = true

    public init(forceCache: Bool = false, flushCache: Bool = false, verify: Bool = true) {
        self.forceCache = forceCache
        self.flushCache = flushCache
        self.verify = verify
    }
}

/// What `fetch` did.
public struct FetchOutcome: Sendable {
    public var entry: CacheEntry
    /// The build was downloaded now (not served from the cache).
    public var downloaded: Bool
    /// The rootfs bytes went through the caller's sink while downloading.
    public var streamed: Bool
}
