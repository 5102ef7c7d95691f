package proc

import (
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLookupCredential(t *testing.T) {
	tests := []struct {
		name, user, group string
		want              *syscall.Credential
		err               string
	}{
		{name: "unchanged", want: nil},
		{name: "name", user: "nobody", want: &syscall.Credential{Uid: 65534, Gid: 65534}},
		{name: "name and group", user: "nobody", group: "daemon", want: &syscall.Credential{Uid: 65534, Gid: 1}},
		{name: "numeric", user: "1", group: "65534", want: &syscall.Credential{Uid: 1, Gid: 65534, Groups: []uint32{1}}},
		{name: "uid without passwd entry", user: "54321", group: "54321", want: &syscall.Credential{Uid: 54321, Gid: 54321}},
		{name: "group only", group: "nogroup",
			want: &syscall.Credential{Uid: uint32(os.Getuid()), Gid: 65534, NoSetGroups: true}},
		{name: "unknown user", user: "no-such-user-gw", err: `user "no-such-user-gw"`},
		{name: "unknown uid without group", user: "54321", err: "uid 54321"},
		{name: "unknown group", user: "nobody", group: "no-such-group-gw", err: `group "no-such-group-gw"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LookupCredential(tc.user, tc.group)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tc.want == nil) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if got == nil {
				return
			}
			// The user's supplementary groups come from /etc/group; pin only
			// what the test names.
			if got.Uid != tc.want.Uid || got.Gid != tc.want.Gid || got.NoSetGroups != tc.want.NoSetGroups ||
				(tc.want.Groups != nil && !slices.Equal(got.Groups, tc.want.Groups)) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestStartAsUser runs a real process as nobody and reads its ids back.
func TestStartAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a process as another user")
	}
	c, err := LookupCredential("nobody", "nogroup")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := Start(Spec{Path: "/bin/sh", Args: []string{"-c", "echo $(id -u) $(id -g) $(id -G)"}, Cred: c}, Files{}, log)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		p.Kill()
		t.Fatal("id did not exit")
	}
	if got := p.Tail(); got != "65534 65534 65534" {
		t.Errorf("runner ids %q, want uid, gid and groups all 65534 (no root group left over)", got)
	}
}
