# Sourced by the fixture scripts that work on cgroups (bash).
CGROUP_ROOT=/sys/fs/cgroup

# cgroup_mounts: every cgroup (v1) and cgroup2 hierarchy at /sys/fs/cgroup or directly below it, the ones
# LXC and coop look at.
cgroup_mounts() {
    awk -v root="$CGROUP_ROOT" '
        ($3 == "cgroup" || $3 == "cgroup2") {
            dir = $2; sub("/[^/]*$", "", dir)
            if ($2 == root || dir == root) print $2
        }' /proc/self/mounts | sort -u
}
