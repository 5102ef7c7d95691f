// Package logfile is an append-only log file that can be reopened at its
// path, for logrotate's default rotation: the file is renamed, then gw is
// signalled and opens a new one under the old name (nginx's USR1). Every
// Write lands whole in exactly one of the two files: writes before the
// reopen go to the renamed file, writes after it to the new one.
package logfile

import (
	"fmt"
	"os"
	"sync"
)

// mode leaves the file unreadable to others: access logs carry client
// addresses and paths. logrotate's "create" sets its own mode anyway.
const mode = 0o640

// File is a log file. Its methods are safe for concurrent use.
type File struct {
	path string
	mu   sync.Mutex // held across each write, so Reopen never closes a file mid-write
	f    *os.File   // nil once closed
}

// Open opens (creating it if need be) the file at path for appending.
func Open(path string) (*File, error) {
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	return &File{path: path, f: f}, nil
}

func open(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, mode)
	if err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	return f, nil
}

// Path is the path the file is (re)opened at.
func (l *File) Path() string { return l.path }

// Write appends p in one write(2). With O_APPEND, a line is never
// interleaved with another process's writes to the same file either.
func (l *File) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, os.ErrClosed
	}
	return l.f.Write(p)
}

// Reopen opens the path again and switches writes to it, then closes the
// old file. If the path cannot be opened, writes go on to the old file
// and the error says why.
func (l *File) Reopen() error {
	f, err := open(l.path) // outside the lock: writers wait only for the swap
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	if old != nil {
		l.f = f
	}
	l.mu.Unlock()
	if old == nil {
		f.Close()
		return os.ErrClosed
	}
	if err := old.Close(); err != nil {
		return fmt.Errorf("close rotated log file: %w", err)
	}
	return nil
}

// Close closes the file; later writes fail with os.ErrClosed.
func (l *File) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return os.ErrClosed
	}
	err := l.f.Close()
	l.f = nil
	return err
}
