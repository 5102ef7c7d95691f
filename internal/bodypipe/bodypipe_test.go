package bodypipe

import (
	"bytes"
	"io"
	"testing"

	"golang.org/x/sys/unix"
)

func fill(t *testing.T, pp *Pipe, b []byte) {
	t.Helper()
	for len(b) > 0 {
		n, err := unix.Write(pp.W(), b)
		if err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
}

// TestBodyReadAndSplice: a body reads back as prefix then pipe, and
// SpliceTo moves the pipe's part into another pipe whole.
func TestBodyReadAndSplice(t *testing.T) {
	p := NewPool(2, 128<<10)
	defer p.Close()
	data := bytes.Repeat([]byte("abcdefg"), 10000) // 70000
	for _, splice := range []bool{false, true} {
		pp := p.Get()
		if pp == nil || pp.Cap() < 128<<10 {
			t.Fatalf("pipe %v", pp)
		}
		fill(t, pp, data[100:])
		b := NewBody(pp, append(pp.Prefix(), data[:100]...), int64(len(data)-100))
		if b.Len() != int64(len(data)) {
			t.Fatalf("Len %d", b.Len())
		}
		var got []byte
		if splice {
			var fds [2]int
			if err := unix.Pipe2(fds[:], unix.O_NONBLOCK); err != nil {
				t.Fatal(err)
			}
			unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, 128<<10)
			got = append(got, b.Prefix()...)
			for b.Piped() > 0 {
				if _, err := b.SpliceTo(fds[1], 1<<20); err != nil {
					t.Fatal(err)
				}
			}
			out := make([]byte, 1<<17)
			n, _ := unix.Read(fds[0], out)
			got = append(got, out[:n]...)
			unix.Close(fds[0])
			unix.Close(fds[1])
		} else {
			var err error
			if got, err = io.ReadAll(b); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("splice=%v: %d bytes back, want %d", splice, len(got), len(data))
		}
		b.Release()
	}
	if p.Open() != 1 {
		t.Errorf("%d pipes open, want 1 (the emptied one reused)", p.Open())
	}
}

// TestReleaseClosesNonEmpty: a body released with bytes left closes its
// pipe (no stale bytes reach the next request); an empty one is kept.
func TestReleaseClosesNonEmpty(t *testing.T) {
	p := NewPool(2, 0)
	defer p.Close()
	pp := p.Get()
	fill(t, pp, []byte("left over"))
	NewBody(pp, nil, 9).Release()
	if p.Open() != 0 {
		t.Fatalf("%d open after releasing a full pipe, want 0", p.Open())
	}
	if _, err := unix.FcntlInt(uintptr(pp.W()), unix.F_GETPIPE_SZ, 0); err == nil {
		t.Error("the released pipe's descriptor is still open")
	}
	a, b, c := p.Get(), p.Get(), p.Get()
	if a == nil || b == nil || c != nil {
		t.Fatalf("Get past max=2: %v %v %v", a, b, c)
	}
	a.Put(true)
	b.Put(true)
	if p.Open() != 2 || p.Get() != b {
		t.Errorf("empty pipes not kept for reuse")
	}
}
