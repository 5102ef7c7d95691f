package proc

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct {
		in      string
		max     int
		lines   []string
		dropped []int
	}{
		{"a\nb\r\n\nc", 10, []string{"a", "b", "", "c"}, []int{0, 0, 0, 0}},
		{long + "\nafter\n", 10, []string{long[:10], "after"}, []int{90, 0}},
		{long, 10, []string{long[:10]}, []int{90}},
		{"", 10, nil, nil},
	}
	for i, tc := range tests {
		// A 16-byte reader: long lines arrive in many fragments.
		br := bufio.NewReaderSize(strings.NewReader(tc.in), 16)
		var lines []string
		var dropped []int
		for {
			line, d, err := readLine(br, nil, tc.max)
			if err == nil || len(line) > 0 || d > 0 {
				lines, dropped = append(lines, string(line)), append(dropped, d)
			}
			if err != nil {
				break
			}
		}
		if strings.Join(lines, "|") != strings.Join(tc.lines, "|") || len(dropped) != len(tc.dropped) {
			t.Errorf("%d: lines %q, want %q", i, lines, tc.lines)
			continue
		}
		for j := range dropped {
			if dropped[j] != tc.dropped[j] {
				t.Errorf("%d: line %d dropped %d, want %d", i, j, dropped[j], tc.dropped[j])
			}
		}
	}
}

// lockedBuffer is a log sink the two output readers share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLongStderrLineKeepsLogging: a 2 MiB stderr line used to end the
// scanner (bufio.ErrTooLong at 1 MiB) and with it every later line, so the
// traceback that followed never reached the log. Now the long line is
// logged cut, and the next line still arrives.
func TestLongStderrLineKeepsLogging(t *testing.T) {
	var out lockedBuffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	script := `head -c 2097152 /dev/zero | tr '\0' x >&2; echo >&2; echo 'Traceback: boom' >&2`
	p, err := Start(Spec{Path: "/bin/sh", Args: []string{"-c", script}, Env: os.Environ()}, Files{}, log)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		p.Kill()
		t.Fatal("runner did not exit")
	}
	got := out.String()
	if !strings.Contains(got, "Traceback: boom") {
		t.Fatalf("the line after a 2 MiB line is missing from the log (%d bytes logged)", len(got))
	}
	if !strings.Contains(got, fmt.Sprint("truncated_bytes=", 2<<20-maxLine)) {
		t.Errorf("the long line is not logged cut with its dropped size")
	}
	if len(got) > 2*maxLine+4096 {
		t.Errorf("logged %d bytes for one long line", len(got))
	}
}

// TestCPUSeconds: an exited process reports its CPU time, its reaped
// children's included (the shell's spinning child), from rusage.
func TestCPUSeconds(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	script := `sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'`
	p, err := Start(Spec{Path: "/bin/sh", Args: []string{"-c", script}, Env: os.Environ()}, Files{}, log)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(60 * time.Second):
		p.Kill()
		t.Fatal("did not exit")
	}
	if got := p.CPUSeconds(); got < 0.05 || got > 600 {
		t.Errorf("CPUSeconds = %v after a 300000-step shell loop", got)
	}
	t.Logf("CPUSeconds = %.3f", p.CPUSeconds())
}
