package bridge

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/gwhq/gw/proto/bridgepb"
)

func TestHeaderLayout(t *testing.T) {
	tests := []struct {
		name string
		typ  Type
		n    int
		want []byte
	}{
		{"empty end", RequestEnd, 0, []byte{3, 0, 0, 0, 0, 0, 0, 0}},
		{"body 300", RequestBody, 300, []byte{2, 0, 0, 0, 0x2c, 0x01, 0, 0}},
		{"pong max", Pong, MaxPayload, []byte{19, 0, 0, 0, 0, 0, 0, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := AppendHeader(nil, tc.typ, tc.n); !bytes.Equal(got, tc.want) {
				t.Errorf("got %x, want %x", got, tc.want)
			}
			rd := NewReader(bufio.NewReader(bytes.NewReader(tc.want)))
			typ, n, err := rd.Header()
			if err != nil || typ != tc.typ || n != tc.n {
				t.Errorf("read back %v %d %v", typ, n, err)
			}
		})
	}
}

func TestReaderErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"clean eof", nil, io.EOF},
		{"torn header", []byte{1, 0, 0}, io.ErrUnexpectedEOF},
		{"oversized", []byte{2, 0, 0, 0, 1, 0, 0, 1}, ErrFrameTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := NewReader(bufio.NewReader(bytes.NewReader(tc.in))).Header()
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("torn payload", func(t *testing.T) {
		rd := NewReader(bufio.NewReader(bytes.NewReader(AppendHeader(nil, RequestBody, 10))))
		_, n, _ := rd.Header()
		if _, err := rd.Payload(n); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("err = %v", err)
		}
	})
}

type failWriter struct{ n int }

func (f *failWriter) Write(b []byte) (int, error) { f.n += len(b); return 0, errors.New("client gone") }

// A failing destination must not desync the stream: the payload is still
// consumed, so the next frame reads cleanly.
func TestCopyPayloadKeepsSync(t *testing.T) {
	body := strings.Repeat("x", 200000)
	stream := AppendFrame(nil, ResponseBody, []byte(body))
	stream = AppendHeader(stream, ResponseEnd, 0)
	rd := NewReader(bufio.NewReaderSize(bytes.NewReader(stream), 4096))
	_, n, _ := rd.Header()
	var we *WriteError
	if err := rd.CopyPayload(&failWriter{}, n); !errors.As(err, &we) {
		t.Fatalf("err = %v, want WriteError", err)
	}
	if typ, _, err := rd.Header(); err != nil || typ != ResponseEnd {
		t.Fatalf("next frame = %v %v", typ, err)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMessage(&buf, Ping, &bridgepb.Ping{Seq: 99}); err != nil {
		t.Fatal(err)
	}
	var got bridgepb.Ping
	if err := NewReader(bufio.NewReader(&buf)).Message(Ping, &got); err != nil || got.Seq != 99 {
		t.Fatalf("got %v %v", got.Seq, err)
	}
	buf.Reset()
	WriteMessage(&buf, Pong, &bridgepb.Pong{Seq: 1})
	if err := NewReader(bufio.NewReader(&buf)).Message(Ping, &got); err == nil {
		t.Fatal("wrong frame type accepted")
	}
}

func FuzzDecodeResponseHead(f *testing.F) {
	for _, c := range goldenCases() {
		if c.typ == ResponseHead {
			b, _ := AppendMessage(nil, c.typ, c.msg)
			f.Add(b[HeaderSize:])
		}
	}
	f.Add([]byte{0x12, 0x05, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var n int
		DecodeResponseHead(b, func(name, value []byte) { n++ })
		DecodeResponseEnd(b) // errors and all
	})
}

func FuzzReader(f *testing.F) {
	for _, c := range goldenCases() {
		if c.msg == nil {
			f.Add(AppendFrame(nil, c.typ, c.body))
		} else {
			b, _ := AppendMessage(nil, c.typ, c.msg)
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rd := NewReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			_, n, err := rd.Header()
			if err != nil {
				return
			}
			if err := rd.CopyPayload(io.Discard, n); err != nil {
				return
			}
		}
	})
}
