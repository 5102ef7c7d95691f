package h1

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

type recWriter struct {
	writes []string
	err    error
}

func (r *recWriter) Write(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func TestWbuf(t *testing.T) {
	big := strings.Repeat("b", 20)
	tests := []struct {
		name   string
		writes []string
		flush  bool
		want   string // everything the writer got, in order
		calls  int    // Write calls on the writer (a writev of n buffers counts n here)
	}{
		{"fits: held until Flush", []string{"head", "body"}, true, "headbody", 1},
		{"fits, no Flush: nothing out", []string{"head"}, false, "", 0},
		{"too big, nothing held: straight out", []string{big}, false, big, 1},
		{"too big behind held bytes: both together", []string{"head", big, "tail"}, true, "head" + big + "tail", 3},
		{"exactly full: held", []string{"0123456789abcdef"}, false, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rw := &recWriter{}
			b := newWbuf(16)
			b.Reset(rw)
			for _, w := range tc.writes {
				if n, err := b.WriteString(w); n != len(w) || err != nil {
					t.Fatalf("WriteString(%q) = %d, %v", w, n, err)
				}
			}
			if tc.flush {
				if err := b.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			if got := strings.Join(rw.writes, ""); got != tc.want || len(rw.writes) != tc.calls {
				t.Errorf("writer got %q in %d writes, want %q in %d", got, len(rw.writes), tc.want, tc.calls)
			}
		})
	}
}

func TestWbufErrorSticks(t *testing.T) {
	boom := errors.New("boom")
	rw := &recWriter{err: boom}
	b := newWbuf(4)
	b.Reset(rw)
	b.Write([]byte("ab"))
	if _, err := b.Write(bytes.Repeat([]byte("x"), 8)); !errors.Is(err, boom) {
		t.Fatalf("write beyond the buffer: %v, want boom", err)
	}
	if _, err := b.Write([]byte("a")); !errors.Is(err, boom) {
		t.Errorf("write after an error: %v, want boom", err)
	}
	if err := b.Flush(); !errors.Is(err, boom) {
		t.Errorf("Flush after an error: %v, want boom", err)
	}
	b.Reset(&recWriter{})
	if _, err := b.Write([]byte("a")); err != nil {
		t.Errorf("after Reset: %v", err)
	}
}
