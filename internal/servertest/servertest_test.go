package servertest

import (
	"testing"
)

// TestServersLeaveNoProcess: a web server's workers die with it when the
// test that started it ends.
func TestServersLeaveNoProcess(t *testing.T) {
	for name, start := range map[string]func(t testing.TB, root string) HTTPServer{
		"nginx":    func(t testing.TB, root string) HTTPServer { return Nginx(t, root, false) },
		"apache":   Apache,
		"lighttpd": Lighttpd,
	} {
		var pgid int
		t.Run(name, func(t *testing.T) {
			srv := start(t, t.TempDir())
			pgid = srv.PGID
			members := GroupMembers(pgid)
			if len(members) == 0 || members[0] == 0 {
				t.Fatalf("no process found in the server's group %d", pgid)
			}
			t.Logf("%s runs as processes %v of group %d", name, members, pgid)
		})
		if left := GroupMembers(pgid); len(left) > 0 {
			t.Errorf("%s: processes %v of group %d left after its test", name, left, pgid)
		}
	}
}
