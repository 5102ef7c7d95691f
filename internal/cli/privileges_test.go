package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/gwhq/gw/internal/config"
)

// TestRunnerUsers covers who runners run as and when gw drops root, for a
// gw started as root.
func TestRunnerUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the policy under test is the one of a gw started as root")
	}
	apps := func(users ...string) []config.App {
		var out []config.App
		for i, u := range users {
			user, group, _ := strings.Cut(u, ":")
			out = append(out, config.App{Name: string(rune('a' + i)), User: user, Group: group})
		}
		return out
	}
	tests := []struct {
		name      string
		cfg       config.Config
		dropUID   int // -1: gw keeps root
		appUsers  string
		errSubstr string
	}{
		{name: "root refused", cfg: config.Config{Apps: apps("")}, errSubstr: `app "a": its runners would run as root; pass --uid USER`},
		{name: "one app without user", cfg: config.Config{Apps: apps("nobody", "")}, errSubstr: `app "b"`},
		{name: "allow root", cfg: config.Config{AllowRoot: true, Apps: apps("")}, dropUID: -1, appUsers: ":"},
		{name: "uid root is explicit", cfg: config.Config{User: "root", Apps: apps("")}, dropUID: -1, appUsers: "root:"},
		{name: "global user drops", cfg: config.Config{User: "nobody", Group: "nogroup", Apps: apps("", "")},
			dropUID: 65534, appUsers: "nobody:nogroup nobody:nogroup"},
		{name: "same user per app drops", cfg: config.Config{User: "nobody", Apps: apps("nobody", "")},
			dropUID: 65534, appUsers: "nobody: nobody:"},
		{name: "other user keeps root", cfg: config.Config{User: "nobody", Apps: apps("", "daemon")},
			dropUID: -1, appUsers: "nobody: daemon:"},
		{name: "other group keeps root", cfg: config.Config{User: "nobody", Apps: apps("", "nobody:daemon")},
			dropUID: -1, appUsers: "nobody: nobody:daemon"},
		{name: "per-app users only keep root", cfg: config.Config{Apps: apps("nobody", "nobody")},
			dropUID: -1, appUsers: "nobody: nobody:"},
		{name: "unknown user", cfg: config.Config{User: "no-such-user-gw", Apps: apps("")}, errSubstr: "no-such-user-gw"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			drop, err := runnerUsers(&tc.cfg)
			if tc.errSubstr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errSubstr) {
					t.Fatalf("err = %v, want %q", err, tc.errSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.dropUID < 0 && drop != nil:
				t.Errorf("drops to %+v, want gw to keep root", drop)
			case tc.dropUID >= 0 && (drop == nil || int(drop.Uid) != tc.dropUID):
				t.Errorf("drops to %+v, want uid %d", drop, tc.dropUID)
			}
			var got []string
			for _, a := range tc.cfg.Apps {
				got = append(got, a.User+":"+a.Group)
			}
			if strings.Join(got, " ") != tc.appUsers {
				t.Errorf("apps run as %q, want %q", strings.Join(got, " "), tc.appUsers)
			}
		})
	}
}
