package memlimit

import (
	"errors"
	"testing"
	"testing/fstest"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestResolve(t *testing.T) {
	v2 := fstest.MapFS{
		"proc/self/cgroup":                          {Data: []byte("0::/kubepods/pod1/c1\n")},
		"sys/fs/cgroup/kubepods/pod1/c1/memory.max": {Data: []byte("4294967296\n")},
		"sys/fs/cgroup/memory.max":                  {Data: []byte("max\n")},
	}
	namespaced := fstest.MapFS{
		"proc/self/cgroup":         {Data: []byte("0::/\n")},
		"sys/fs/cgroup/memory.max": {Data: []byte("1073741824\n")},
	}
	v1 := fstest.MapFS{
		"proc/self/cgroup":                           {Data: []byte("4:memory:/docker/abc\n0::/\n")},
		"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("2147483648\n")},
	}
	v1Unlimited := fstest.MapFS{
		"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("9223372036854771712\n")},
	}
	v2Unlimited := fstest.MapFS{"sys/fs/cgroup/memory.max": {Data: []byte("max\n")}}
	// The pod's limit on a parent, the container's own cgroup unlimited.
	parent := fstest.MapFS{
		"proc/self/cgroup":                          {Data: []byte("0::/kubepods/pod1/c1\n")},
		"sys/fs/cgroup/kubepods/pod1/c1/memory.max": {Data: []byte("max\n")},
		"sys/fs/cgroup/kubepods/pod1/memory.max":    {Data: []byte("1073741824\n")},
		"sys/fs/cgroup/kubepods/memory.max":         {Data: []byte("8589934592\n")},
	}
	garbageLeaf := fstest.MapFS{
		"proc/self/cgroup":            {Data: []byte("0::/c1\n")},
		"sys/fs/cgroup/c1/memory.max": {Data: []byte("lots\n")},
		"sys/fs/cgroup/memory.max":    {Data: []byte("2147483648\n")},
	}
	tiny := fstest.MapFS{"sys/fs/cgroup/memory.max": {Data: []byte("4096\n")}}
	escape := fstest.MapFS{
		"proc/self/cgroup":         {Data: []byte("0::/../../etc\n")},
		"etc/memory.max":           {Data: []byte("1048576\n")},
		"sys/fs/cgroup/memory.max": {Data: []byte("1073741824\n")},
	}
	for _, c := range []struct {
		name, value string
		env         map[string]string
		root        fstest.MapFS
		want        int64
		source      string
	}{
		{"own v2 cgroup", "auto", nil, v2, 4 << 30 * 8 / 10, "container"},
		{"namespaced v2", "auto", nil, namespaced, 1 << 30 * 8 / 10, "container"},
		{"v1", "", nil, v1, 2 << 30 * 8 / 10, "container"},
		{"v1 without limit", "auto", nil, v1Unlimited, 0, "none"},
		{"v2 without limit", "auto", nil, v2Unlimited, 0, "none"},
		{"no cgroup", "auto", nil, fstest.MapFS{}, 0, "none"},
		{"the smallest limit along the path", "auto", nil, parent, 1 << 30 * 8 / 10, "container"},
		{"an unreadable leaf skipped", "auto", nil, garbageLeaf, 2 << 30 * 8 / 10, "container"},
		{"a limit too small to be true", "auto", nil, tiny, 0, "none"},
		{"no way out of the cgroup folder", "auto", nil, escape, 1 << 30 * 8 / 10, "container"},
		{"GOMEMLIMIT wins over the container", "auto", map[string]string{"GOMEMLIMIT": "1GiB"}, v2, 0, "GOMEMLIMIT"},
		{"a size wins over GOMEMLIMIT", "200MiB", map[string]string{"GOMEMLIMIT": "1GiB"}, v2, 200 << 20, "flag"},
		{"off", "off", nil, v2, 0, "off"},
		{"bytes", "1073741824", nil, nil, 1 << 30, "flag"},
		{"fraction", "1.5GiB", nil, nil, 3 << 29, "flag"},
		{"KiB", "65536KiB", nil, nil, 64 << 20, "flag"},
		{"B", "67108864B", nil, nil, 64 << 20, "flag"},
		{"TiB", "1TiB", nil, nil, 1 << 40, "flag"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, source, err := Resolve(c.value, env(c.env), c.root)
			if err != nil || got != c.want || source != c.source {
				t.Errorf("Resolve(%q) = %d, %q, %v; want %d, %q", c.value, got, source, err, c.want, c.source)
			}
		})
	}
}

func TestResolveRefuses(t *testing.T) {
	for _, v := range []string{"512", "12x", "-1GiB", "0", "NaN", "InfGiB", "1e30TiB", "MiB", "1 GB"} {
		if n, _, err := Resolve(v, env(nil), fstest.MapFS{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Resolve(%q) = %d, %v; want ErrInvalid", v, n, err)
		}
	}
}
