package fcgi

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestParamsEncoderBytes(t *testing.T) {
	var e ParamsEncoder
	e.Reset([]byte("prefix"), 1)
	e.Add("REQUEST_METHOD", "GET")
	e.Add("QUERY_STRING", "")
	got, err := e.Finish()
	if err != nil {
		t.Fatal(err)
	}
	want := cat([]byte("prefix"),
		rec(TypeParams, 1, "\x0e\x03REQUEST_METHODGET\x0c\x00QUERY_STRING", 7, 0),
		rec(TypeParams, 1, "", 0, 0))
	if !bytes.Equal(got, want) {
		t.Fatalf("got  % x\nwant % x", got, want)
	}

	e.Reset(nil, 3)
	got, err = e.Finish()
	if err != nil || !bytes.Equal(got, rec(TypeParams, 3, "", 0, 0)) {
		t.Fatalf("empty stream = % x, %v", got, err)
	}
}

// TestParamsEncoderAddBytes: a name given as bytes encodes as the same
// string would, and costs no allocation once the buffer has room.
func TestParamsEncoderAddBytes(t *testing.T) {
	var a, b ParamsEncoder
	a.Reset(nil, 1)
	b.Reset(nil, 1)
	a.Add("HTTP_USER_AGENT", "wrk")
	b.AddBytes([]byte("HTTP_USER_AGENT"), "wrk")
	wa, _ := a.Finish()
	wb, _ := b.Finish()
	if !bytes.Equal(wa, wb) {
		t.Fatalf("AddBytes % x\nAdd      % x", wb, wa)
	}
	buf, name := make([]byte, 0, 256), []byte("HTTP_ACCEPT")
	if n := testing.AllocsPerRun(100, func() {
		b.Reset(buf[:0], 1)
		b.AddBytes(name, "*/*")
		b.Finish()
	}); n != 0 {
		t.Fatalf("AddBytes allocates %v times per run", n)
	}
}

// TestParamsEncoderWholePairs is trap 5: php-cgi resets the connection when a
// pair straddles two PARAMS records, so every record must parse on its own.
func TestParamsEncoderWholePairs(t *testing.T) {
	var e ParamsEncoder
	e.Reset(nil, 9)
	var want []Pair
	for i := range 40 {
		p := Pair{fmt.Sprintf("HTTP_X_%02d", i), strings.Repeat(string(rune('a'+i%26)), 5000+i*37)}
		want = append(want, p)
		e.Add(p.Name, p.Value)
	}
	// A pair that exactly fills one record.
	exact := Pair{"X", strings.Repeat("z", MaxContent-1-4-1)}
	want = append(want, exact)
	e.Add(exact.Name, exact.Value)
	raw, err := e.Finish()
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(bufio.NewReader(bytes.NewReader(raw)))
	var got []Pair
	records := 0
	for {
		h, content, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if h.Type != TypeParams || h.ID != 9 || (int(h.ContentLength)+int(h.PaddingLength))%8 != 0 {
			t.Fatalf("bad record header %+v", h)
		}
		if len(content) == 0 {
			break
		}
		records++
		if err := ParseParams(content, func(n, v []byte) error {
			got = append(got, Pair{string(n), string(v)})
			return nil
		}); err != nil {
			t.Fatalf("record %d does not parse on its own: %v", records, err)
		}
	}
	if records < 4 {
		t.Errorf("only %d records for ~270 KB of params", records)
	}
	if len(got) != len(want) {
		t.Fatalf("%d pairs back, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pair %d = %.20q, want %.20q", i, got[i], want[i])
		}
	}
}

func TestParamsEncoderPairTooBig(t *testing.T) {
	var e ParamsEncoder
	e.Reset(nil, 1)
	e.Add("A", "b")
	e.Add("HTTP_COOKIE", strings.Repeat("c", MaxContent))
	e.Add("C", "d")
	if _, err := e.Finish(); err == nil || !strings.Contains(err.Error(), `"HTTP_COOKIE"`) {
		t.Fatalf("err = %v, want one naming HTTP_COOKIE", err)
	}
	if _, err := AppendGetValues(nil, strings.Repeat("n", MaxContent)); err == nil {
		t.Fatal("oversized GET_VALUES accepted")
	}
}

func BenchmarkParamsEncoder(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 4096)
	var e ParamsEncoder
	ua := strings.Repeat("u", 150)
	for b.Loop() {
		e.Reset(buf[:0], 1)
		e.Add("REQUEST_METHOD", "GET")
		e.Add("REQUEST_URI", "/index.php?x=1")
		e.Add("HTTP_USER_AGENT", ua)
		if _, err := e.Finish(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReader(b *testing.B) {
	raw := bytes.Repeat(rec(TypeStdin, 1, strings.Repeat("x", 32768), 0, 0), 8)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	br := bufio.NewReader(nil)
	for b.Loop() {
		br.Reset(bytes.NewReader(raw))
		r := NewReader(br)
		for {
			if _, _, err := r.Next(); err != nil {
				break
			}
		}
	}
}
