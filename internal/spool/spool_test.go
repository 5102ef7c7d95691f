package spool

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func TestFill(t *testing.T) {
	const mem = 16
	small, exact, big := "hello", strings.Repeat("e", mem), strings.Repeat("b", 3*mem+5)
	tests := []struct {
		name   string
		src    io.Reader
		size   int64
		want   string
		inline bool // kept in memory (has Bytes)
		err    error
	}{
		{"small, length known", strings.NewReader(small), 5, small, true, nil},
		{"small, length unknown", strings.NewReader(small), -1, small, true, nil},
		{"exactly the memory limit", strings.NewReader(exact), mem, exact, true, nil},
		{"limit, length unknown", strings.NewReader(exact), -1, exact, false, nil},
		{"large, length known", strings.NewReader(big), int64(len(big)), big, false, nil},
		{"large, length unknown", strings.NewReader(big), -1, big, false, nil},
		{"large, one byte a read", iotest.OneByteReader(strings.NewReader(big)), -1, big, false, nil},
		{"empty", strings.NewReader(""), -1, "", true, nil},
		{"short of its length, small", strings.NewReader("hel"), 5, "", false, io.ErrUnexpectedEOF},
		{"short of its length, large", strings.NewReader(big), int64(len(big) + 1), "", false, io.ErrUnexpectedEOF},
		{"read error, small", iotest.ErrReader(errBoom), -1, "", false, errBoom},
		{"read error, large", io.MultiReader(strings.NewReader(big), iotest.ErrReader(errBoom)), -1, "", false, errBoom},
	}
	s, err := New(filepath.Join(t.TempDir(), "body"), mem)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := s.Fill(tc.src, tc.size)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			defer b.Release()
			_, inline := b.(interface{ Bytes() []byte })
			if inline != tc.inline {
				t.Errorf("in memory %v, want %v", inline, tc.inline)
			}
			got, err := io.ReadAll(b)
			if err != nil || string(got) != tc.want || b.Len() != int64(len(tc.want)) {
				t.Errorf("read %d bytes (Len %d), err %v; want %d", len(got), b.Len(), err, len(tc.want))
			}
		})
	}
}

var errBoom = errors.New("boom")

// TestPrivateDir: the directory is 0700 and no body file is left in it,
// even while a body is held (the file is unlinked at once).
func TestPrivateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "body")
	s, err := New(dir, 4)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Fill(strings.NewReader("more than four"), -1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%d files in the spool dir, want none (unlinked)", len(ents))
	}
}
