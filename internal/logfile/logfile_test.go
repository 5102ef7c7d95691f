package logfile

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReopenUnderConcurrentWrites rotates the way logrotate does (rename,
// then reopen) while writers keep writing: every line must land exactly
// once, whole, and each writer's lines must move from one file to the next
// in order (no line written after a reopen lands in an older file).
func TestReopenUnderConcurrentWrites(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const writers, rotations = 8, 5
	var stop atomic.Bool
	var wg sync.WaitGroup
	counts := make([]int, writers)
	for w := range writers {
		wg.Add(1)
		// Each writer stops when the rotations are done.
		go func() {
			defer wg.Done()
			pad := strings.Repeat("x", 50*w) // lines of several lengths
			for n := 0; !stop.Load() || n < 100; n++ {
				if _, err := fmt.Fprintf(f, "w%d %d %s\n", w, n, pad); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				counts[w] = n + 1
			}
		}()
	}
	var files []string
	for i := range rotations {
		waitGrowth(t, path)
		rotated := fmt.Sprintf("%s.%d", path, i)
		if err := os.Rename(path, rotated); err != nil {
			t.Fatal(err)
		}
		files = append(files, rotated)
		if err := f.Reopen(); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	files = append(files, path)

	next := make([]int, writers) // the line each writer must write next
	for i, name := range files {
		lines := readLines(t, name)
		if len(lines) == 0 && i > 0 {
			t.Errorf("%s is empty: the reopen did not take", filepath.Base(name))
		}
		for _, line := range lines {
			fs := strings.Fields(line)
			w, _ := strconv.Atoi(strings.TrimPrefix(fs[0], "w"))
			n, _ := strconv.Atoi(fs[1])
			torn := len(fs) != 2+min(w, 1) || w > 0 && len(fs[2]) != 50*w
			if torn || n != next[w] {
				t.Fatalf("%s: line %q: want w%d %d (lost, repeated, reordered or torn)", filepath.Base(name), line, w, next[w])
			}
			next[w]++
		}
	}
	for w := range writers {
		if next[w] != counts[w] {
			t.Errorf("writer %d wrote %d lines, the files hold %d", w, counts[w], next[w])
		}
	}
}

// waitGrowth waits until the current file has some lines, so each rotated
// file holds writes.
func waitGrowth(t *testing.T, path string) {
	for {
		if fi, err := os.Stat(path); err == nil && fi.Size() > 4096 {
			return
		}
		if t.Failed() {
			t.FailNow()
		}
		time.Sleep(time.Millisecond)
	}
}

func readLines(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("%s ends in a partial line", name)
	}
	return out
}

// A reopen that cannot open the path keeps writing to the old file.
func TestReopenFailureKeepsOldFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := Open(filepath.Join(dir, "a.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	moved := dir + ".old"
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if err := f.Reopen(); err == nil {
		t.Fatal("Reopen succeeded with its directory gone")
	}
	if _, err := f.Write([]byte("still here\n")); err != nil {
		t.Fatal(err)
	}
	if got := readLines(t, filepath.Join(moved, "a.log")); len(got) != 1 || got[0] != "still here" {
		t.Errorf("old file holds %q, want the line written after the failed reopen", got)
	}
}

func TestClosed(t *testing.T) {
	f, err := Open(filepath.Join(t.TempDir(), "a.log"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("x\n")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v, want os.ErrClosed", err)
	}
	if err := f.Reopen(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Reopen after Close: %v, want os.ErrClosed", err)
	}
}

func TestOpenError(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "no", "such", "dir", "a.log"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open in a missing directory: %v, want an error wrapping os.ErrNotExist", err)
	}
}
