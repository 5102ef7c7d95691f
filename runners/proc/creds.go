package proc

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// LookupCredential resolves what a runner runs as from a user and a group,
// each a name or a numeric id: the user's uid, the group's gid (the user's
// primary group when group is "") and the user's supplementary groups, as
// login(1) would set them. A user "" keeps gw's uid; both "" return nil: the
// runner runs as gw does.
func LookupCredential(usr, group string) (*syscall.Credential, error) {
	if usr == "" && group == "" {
		return nil, nil
	}
	c := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()), NoSetGroups: true}
	if usr != "" {
		u, err := lookupUser(usr)
		if err != nil {
			if n, ok := number(usr); ok && group != "" {
				// A bare uid with no passwd entry is common in containers
				// (Kubernetes runAsUser); it has no groups, and must not
				// keep gw's.
				c.Uid, c.NoSetGroups = n, false
				u = nil
			} else {
				return nil, err
			}
		}
		if u != nil {
			if c, err = userCredential(u); err != nil {
				return nil, err
			}
		}
	}
	if group != "" {
		gid, err := lookupGroup(group)
		if err != nil {
			return nil, err
		}
		c.Gid = gid
	}
	return c, nil
}

// userCredential is u with its primary group and supplementary groups.
func userCredential(u *user.User) (*syscall.Credential, error) {
	uid, _ := number(u.Uid)
	gid, _ := number(u.Gid)
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("groups of user %s: %w", u.Username, err)
	}
	c := &syscall.Credential{Uid: uid, Gid: gid}
	for _, id := range ids {
		if g, ok := number(id); ok {
			c.Groups = append(c.Groups, g)
		}
	}
	return c, nil
}

func lookupUser(s string) (*user.User, error) {
	if _, ok := number(s); ok {
		u, err := user.LookupId(s)
		if err != nil {
			return nil, fmt.Errorf("uid %s: %w", s, err)
		}
		return u, nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", s, err)
	}
	return u, nil
}

func lookupGroup(s string) (uint32, error) {
	if n, ok := number(s); ok {
		return n, nil // a gid needs no /etc/group entry to be used
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		return 0, fmt.Errorf("group %q: %w", s, err)
	}
	n, _ := number(g.Gid)
	return n, nil
}

func number(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// applied is the credential Start sets for the child: nil when there is
// nothing to change. A gw that has already become the runners' user (after
// dropping root) is not allowed to call setgroups, which the kernel refuses
// without CAP_SETGID even for the groups one already has.
func applied(c *syscall.Credential) *syscall.Credential {
	if c == nil {
		return nil
	}
	if os.Geteuid() != 0 && c.Uid == uint32(os.Geteuid()) && c.Gid == uint32(os.Getegid()) {
		return nil
	}
	return c
}

// Drop makes gw itself run as c for good: supplementary groups first, then
// the group, then the user, since after setuid nothing else may change.
// Go applies each to every thread of the process (since Go 1.16), so no
// thread keeps root behind the caller's back.
func Drop(c *syscall.Credential) error {
	groups := make([]int, len(c.Groups))
	for i, g := range c.Groups {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(int(c.Gid)); err != nil {
		return fmt.Errorf("setgid %d: %w", c.Gid, err)
	}
	if err := syscall.Setuid(int(c.Uid)); err != nil {
		return fmt.Errorf("setuid %d: %w", c.Uid, err)
	}
	return nil
}
