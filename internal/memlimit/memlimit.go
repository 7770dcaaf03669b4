// Package memlimit gives the Go runtime a soft memory limit from
// --memory-limit. Without one, the garbage collector lets the heap grow to
// twice what is live before collecting: a scan holding 190 MB of a
// million tiles' entries peaks past 400 MiB, and a pod sized for the live
// memory is killed. With one, the collector works harder as the limit
// nears instead (it is soft: live memory over it is never refused).
package memlimit

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// Auto is the default value: GOMEMLIMIT when set, else a share of the
// container's memory limit, else none.
const Auto = "auto"

// Off leaves the runtime without a limit.
const Off = "off"

// containerShare is the part of a container's memory limit given to the Go
// heap: the rest is for GDAL's own memory, the libraries (about 70 MiB
// mapped) and the goroutines' stacks.
const containerShare = 0.8

// noLimit: cgroup v1 writes a number near 2^63 for "no limit", v2 "max".
const noLimit = 1 << 62

// minLimit: below this a scan cannot even load GDAL; a smaller value is a
// typo (512 for 512MiB), refused rather than obeyed.
const minLimit = 32 << 20

// ErrInvalid is a --memory-limit value that is neither auto, off nor a
// size.
var ErrInvalid = errors.New("invalid memory limit")

// Resolve says which limit value asks for, in bytes (0: none set by us),
// and where it comes from. getenv reads the environment; root is the file
// system holding /proc and /sys (os.DirFS("/")).
func Resolve(value string, getenv func(string) string, root fs.FS) (int64, string, error) {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case Off:
		return 0, Off, nil
	case Auto, "":
		if getenv("GOMEMLIMIT") != "" {
			// The runtime has read it already; it wins over a guess.
			return 0, "GOMEMLIMIT", nil
		}
		// A container limit so small that its share could not even load
		// GDAL is a misread file more likely than a real limit.
		if n := int64(float64(containerLimit(root)) * containerShare); n >= minLimit {
			return n, "container", nil
		}
		return 0, "none", nil
	}
	n, err := ParseSize(value)
	if err != nil {
		return 0, "", err
	}
	return n, "flag", nil
}

// Enforce gives the runtime what Resolve said: a limit of bytes when
// positive; none at all for off, not even GOMEMLIMIT's, which the runtime
// read at its start; otherwise what the runtime has.
func Enforce(bytes int64, source string) {
	switch {
	case bytes > 0:
		debug.SetMemoryLimit(bytes)
	case source == Off:
		debug.SetMemoryLimit(math.MaxInt64)
	}
}

var units = []struct {
	suffix string
	shift  uint
}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// ParseSize reads a size as GOMEMLIMIT writes it: bytes, or a number with
// B, KiB, MiB, GiB or TiB.
func ParseSize(s string) (int64, error) {
	num, shift := strings.TrimSpace(s), uint(0)
	for _, u := range units {
		if v, ok := strings.CutSuffix(num, u.suffix); ok {
			num, shift = strings.TrimSpace(v), u.shift
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%w %q: want auto, off or a size such as 512MiB or 2GiB", ErrInvalid, s)
	}
	bytes := v * float64(uint64(1)<<shift)
	if bytes >= math.MaxInt64 {
		return 0, fmt.Errorf("%w %q: too large", ErrInvalid, s)
	}
	if bytes < minLimit {
		return 0, fmt.Errorf("%w %q: under %d MiB (a unit forgotten? 512 is bytes, 512MiB is not)", ErrInvalid, s, minLimit>>20)
	}
	return int64(bytes), nil
}

// containerLimit is the memory limit of the process's cgroup: the
// smallest of the limits written along its path (a pod's limit may sit on
// a parent of the container's cgroup), v2 or v1; 0 when none can be read:
// guessing is a convenience, never an error.
func containerLimit(root fs.FS) int64 {
	least := int64(0)
	for _, p := range cgroupFiles(root) {
		b, err := fs.ReadFile(root, p)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= noLimit { // "max", or unreadable
			continue
		}
		if least == 0 || n < least {
			least = n
		}
	}
	return least
}

// maxDepth bounds the cgroup path walked up: real ones are a few levels.
const maxDepth = 16

// cgroupFiles are where the limit may be written: along the process's own
// cgroup v2 path (a host, or a container without a cgroup namespace), at
// the root of a namespaced v2 hierarchy, and where v1 keeps it.
func cgroupFiles(root fs.FS) []string {
	var files []string
	if b, err := fs.ReadFile(root, "proc/self/cgroup"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			p, ok := strings.CutPrefix(line, "0::/")
			if !ok || p == "" || !fs.ValidPath(p) {
				continue
			}
			for depth := 0; p != "." && depth < maxDepth; depth++ {
				files = append(files, "sys/fs/cgroup/"+p+"/memory.max")
				p = path.Dir(p)
			}
		}
	}
	return append(files, "sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory/memory.limit_in_bytes")
}
