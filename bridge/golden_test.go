package bridge

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/gwhq/gw/proto/bridgepb"
)

var update = flag.Bool("update", false, "rewrite testdata/golden")

// goldenCase is one shared test vector: the frame every codec must produce
// for these fields, and decode back to them. The shims' --selftest reads the
// same files (testdata/golden/NAME.bin + NAME.json).
type goldenCase struct {
	name   string
	typ    Type
	msg    proto.Message // nil for raw frames (body, or id and body)
	body   []byte
	fields map[string]any // the JSON view of msg; bytes and strings as latin1(their bytes)
	// hasID: a raw frame whose payload is a u32le id, then body (WS_TEXT,
	// WS_BINARY: the session; RAW_CONNECT, RAW_CLOSED: the connection).
	// The JSON carries the id as "id" and the rest as "body".
	hasID bool
	id    uint32
}

// latin1 maps each byte to the code point of the same value, the JSON form
// the shims decode with .encode('latin-1').
func latin1(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

func latin1s(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = latin1(b)
	}
	return out
}

func bs(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// block joins pairs the way env_block and header_block carry them.
func block(pairs [][]byte) []byte { return bytes.Join(pairs, []byte{0}) }

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func goldenCases() []goldenCase {
	basicEnv := bs("REQUEST_METHOD", "GET", "SCRIPT_NAME", "", "PATH_INFO", "/hello",
		"QUERY_STRING", "a=1&b=2", "SERVER_NAME", "localhost", "SERVER_PORT", "8080",
		"SERVER_PROTOCOL", "HTTP/1.1", "HTTP_HOST", "localhost:8080")
	latinEnv := bs("REQUEST_METHOD", "POST", "PATH_INFO", "/caf\xc3\xa9/\xff", "HTTP_X_E", "",
		"CONTENT_LENGTH", "5", "HTTP_X_LONG", strings.Repeat("v", 300))
	bigEnv := bs("HTTP_X_BIG", strings.Repeat("b", 70000))
	detail := "Traceback (most recent call last):\n  File \"app.py\", line 3\n    def (:\n        ^\nSyntaxError: invalid syntax\n"
	var cases []goldenCase
	add := func(name string, typ Type, msg proto.Message, fields map[string]any) {
		cases = append(cases, goldenCase{name: name, typ: typ, msg: msg, fields: fields})
	}
	add("request_head_basic", RequestHead,
		&bridgepb.RequestHead{EnvBlock: block(basicEnv), UrlScheme: "http", RequestId: "req-1"},
		map[string]any{"env_block": latin1(block(basicEnv)), "url_scheme": "http", "request_id": "req-1"})
	add("request_head_latin1", RequestHead,
		&bridgepb.RequestHead{EnvBlock: block(latinEnv), UrlScheme: "https"},
		map[string]any{"env_block": latin1(block(latinEnv)), "url_scheme": "https"})
	add("request_head_big_value", RequestHead,
		&bridgepb.RequestHead{EnvBlock: block(bigEnv)},
		map[string]any{"env_block": latin1(block(bigEnv))})
	// A value with a NUL (a percent-decoded %00 in the path) cannot go in
	// the block: it travels in env, the rest in the block.
	nulEnv, restEnv := bs("PATH_INFO", "/a\x00b"), bs("REQUEST_METHOD", "GET", "HTTP_X_EMPTY", "")
	add("request_head_nul_value", RequestHead,
		&bridgepb.RequestHead{Env: nulEnv, EnvBlock: block(restEnv)},
		map[string]any{"env": latin1s(nulEnv), "env_block": latin1(block(restEnv))})
	add("request_head_empty", RequestHead, &bridgepb.RequestHead{}, map[string]any{})
	add("request_end", RequestEnd, &bridgepb.RequestEnd{}, map[string]any{})
	add("request_end_aborted", RequestEnd,
		&bridgepb.RequestEnd{Aborted: true, Reason: "client went away"},
		map[string]any{"aborted": true, "reason": "client went away"})
	hdrs := bs("Content-Type", "text/plain", "Set-Cookie", "a=1", "Set-Cookie", "b=2", "X-Latin", "\xe9")
	add("response_head", ResponseHead,
		&bridgepb.ResponseHead{Status: 200, Headers: hdrs},
		map[string]any{"status": 200, "headers": latin1s(hdrs)})
	add("response_head_block", ResponseHead,
		&bridgepb.ResponseHead{Status: 201, HeaderBlock: block(hdrs)},
		map[string]any{"status": 201, "header_block": latin1(block(hdrs))})
	add("response_head_404_noheaders", ResponseHead,
		&bridgepb.ResponseHead{Status: 404}, map[string]any{"status": 404})
	add("response_end", ResponseEnd, &bridgepb.ResponseEnd{}, map[string]any{})
	add("response_end_error", ResponseEnd,
		&bridgepb.ResponseEnd{Error: "ZeroDivisionError: division by zero"},
		map[string]any{"error": "ZeroDivisionError: division by zero"})
	add("response_end_logvars", ResponseEnd,
		&bridgepb.ResponseEnd{Logvars: bs("user", "alice", "plan", "pro")},
		map[string]any{"logvars": []string{"user", "alice", "plan", "pro"}})
	add("reload_app", ReloadApp, &bridgepb.Ping{}, map[string]any{})
	add("cache_request", CacheRequest,
		&bridgepb.CacheRequest{Op: 2, Key: []byte("\x00user:1"), Value: []byte("\x00\xffok"), Expires: 300},
		map[string]any{"op": 2, "key": latin1([]byte("\x00user:1")), "value": latin1([]byte("\x00\xffok")), "expires": "300"})
	add("cache_answer", CacheAnswer, &bridgepb.CacheAnswer{Ok: true, Value: []byte("v")},
		map[string]any{"ok": true, "value": "v"})
	add("ready", Ready,
		&bridgepb.Ready{Protocol: 1, Pid: 4242, Runtime: "CPython 3.11.2", Slots: 2},
		map[string]any{"protocol": 1, "pid": 4242, "runtime": "CPython 3.11.2", "slots": 2})
	add("ready_client_gone", Ready,
		&bridgepb.Ready{Protocol: 2, Pid: 7, Runtime: "CPython 3.11.2", Slots: 64, Websocket: true, ClientGone: true},
		map[string]any{"protocol": 2, "pid": 7, "runtime": "CPython 3.11.2", "slots": 64, "websocket": true, "client_gone": true})
	add("ready_raw_socket", Ready,
		&bridgepb.Ready{Protocol: 2, Pid: 9, Runtime: "ruby 3.1.2", Slots: 4, Raw: true, RawSocket: true},
		map[string]any{"protocol": 2, "pid": 9, "runtime": "ruby 3.1.2", "slots": 4, "raw": true, "raw_socket": true})
	add("ready_ws_socket", Ready,
		&bridgepb.Ready{Protocol: 2, Pid: 11, Runtime: "CPython 3.11.2", Slots: 64, Websocket: true, ClientGone: true, WsSocket: true},
		map[string]any{"protocol": 2, "pid": 11, "runtime": "CPython 3.11.2", "slots": 64, "websocket": true, "client_gone": true, "ws_socket": true})
	links := bs("link", "</a.css>; rel=preload; as=style", "link", "</b.js>; rel=preload; as=script")
	add("early_hints", EarlyHints, &bridgepb.EarlyHints{Headers: links},
		map[string]any{"headers": latin1s(links)})
	add("client_gone", ClientGone, &bridgepb.Ping{}, map[string]any{})
	add("load_error", LoadError,
		&bridgepb.LoadError{Stage: "import", Message: "SyntaxError: invalid syntax (app.py, line 3)", Detail: detail},
		map[string]any{"stage": "import", "message": "SyntaxError: invalid syntax (app.py, line 3)", "detail": detail})
	add("ping", Ping, &bridgepb.Ping{Seq: 7}, map[string]any{"seq": 7})
	add("ping_big_seq", Ping, &bridgepb.Ping{Seq: 1 << 40}, map[string]any{"seq": uint64(1 << 40)})
	add("pong", Pong, &bridgepb.Pong{Seq: 300, Requests: 123456, Busy: 1},
		map[string]any{"seq": 300, "requests": 123456, "busy": 1})
	add("pong_zero", Pong, &bridgepb.Pong{}, map[string]any{})
	// WebSockets and raw connections (bridge.proto: WS_*, RAW_*).
	wsEnv := bs("REQUEST_METHOD", "GET", "PATH_INFO", "/ws", "HTTP_UPGRADE", "websocket",
		"HTTP_SEC_WEBSOCKET_PROTOCOL", "chat, superchat")
	add("ws_connect", WSConnect,
		&bridgepb.RequestHead{EnvBlock: block(wsEnv), UrlScheme: "http", RequestId: "req-ws", WebsocketSession: 70000},
		map[string]any{"env_block": latin1(block(wsEnv)), "url_scheme": "http", "request_id": "req-ws", "websocket_session": 70000})
	add("ws_connect_min", WSConnect, &bridgepb.RequestHead{WebsocketSession: 1},
		map[string]any{"websocket_session": 1})
	add("ws_connect_handed", WSConnect,
		&bridgepb.RequestHead{EnvBlock: block(wsEnv), UrlScheme: "http", RequestId: "req-ws", WebsocketSession: 70000,
			RawConnection: 70000, WsMaxMessage: 1 << 20, WsPingMs: 30000},
		map[string]any{"env_block": latin1(block(wsEnv)), "url_scheme": "http", "request_id": "req-ws", "websocket_session": 70000,
			"raw_connection": 70000, "ws_max_message": "1048576", "ws_ping_ms": 30000})
	rawEnv := bs("REQUEST_METHOD", "GET", "PATH_INFO", "/cable", "HTTP_UPGRADE", "websocket")
	add("request_head_raw_connection", RequestHead,
		&bridgepb.RequestHead{EnvBlock: block(rawEnv), UrlScheme: "https", RequestId: "req-raw", RawConnection: 300},
		map[string]any{"env_block": latin1(block(rawEnv)), "url_scheme": "https", "request_id": "req-raw", "raw_connection": 300})
	add("request_head_raw_connection_max", RequestHead,
		&bridgepb.RequestHead{EnvBlock: block(rawEnv), RawConnection: 0xFFFFFFFF},
		map[string]any{"env_block": latin1(block(rawEnv)), "raw_connection": uint32(0xFFFFFFFF)})
	wsHdrs := bs("Set-Cookie", "s=1", "X-Latin", "\xe9")
	add("ws_accept", WSAccept, &bridgepb.WsAccept{Subprotocol: "chat", Headers: wsHdrs},
		map[string]any{"subprotocol": "chat", "headers": latin1s(wsHdrs)})
	add("ws_accept_handed", WSAccept, &bridgepb.WsAccept{Subprotocol: "chat", Handed: true},
		map[string]any{"subprotocol": "chat", "handed": true})
	add("ws_accept_empty", WSAccept, &bridgepb.WsAccept{}, map[string]any{})
	add("ws_close", WSClose, &bridgepb.WsClose{Session: 70000, Code: 1000, Reason: "bye \xc3\xa9"},
		map[string]any{"session": 70000, "code": 1000, "reason": latin1([]byte("bye \xc3\xa9"))})
	add("ws_close_no_code", WSClose, &bridgepb.WsClose{Session: 1}, map[string]any{"session": 1})
	add("raw_hijacked", RawHijacked, &bridgepb.Ping{}, map[string]any{})
	withID := func(name string, typ Type, id uint32, body []byte) {
		cases = append(cases, goldenCase{name: name, typ: typ, hasID: true, id: id, body: body})
	}
	// 0x04030201 and 0xFFFFFFFE: a codec that writes the id big-endian, or
	// as a varint, gets these wrong.
	withID("ws_text", WSText, 0x04030201, []byte("h\xc3\xa9llo \xe2\x82\xac"))
	withID("ws_text_empty", WSText, 1, []byte{})
	withID("ws_binary", WSBinary, 0xFFFFFFFE, allBytes())
	withID("raw_connect", RawConnect, 0x04030201, nil)
	withID("raw_closed", RawClosed, 0xFFFFFFFE, nil)
	// A handed-over WebSocket's end (ASGI): messages in, then out, u64le.
	withID("raw_closed_counts", RawClosed, 0x04030201,
		binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 1000), 1<<40+7))
	cases = append(cases,
		goldenCase{name: "request_body", typ: RequestBody, body: []byte("hello=world")},
		goldenCase{name: "request_body_binary", typ: RequestBody, body: allBytes()},
		goldenCase{name: "response_body", typ: ResponseBody, body: []byte("Hello, World!")},
		goldenCase{name: "response_body_empty", typ: ResponseBody, body: []byte{}},
	)
	return cases
}

func (c goldenCase) frame(t *testing.T) []byte {
	t.Helper()
	if c.hasID {
		return AppendFrame(nil, c.typ, append(binary.LittleEndian.AppendUint32(nil, c.id), c.body...))
	}
	if c.msg == nil {
		return AppendFrame(nil, c.typ, c.body)
	}
	b, err := AppendMessage(nil, c.typ, c.msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (c goldenCase) json(t *testing.T) []byte {
	t.Helper()
	v := map[string]any{"type": int(c.typ)}
	if c.hasID {
		v["id"] = c.id
	}
	if c.msg == nil {
		v["body"] = latin1(c.body)
	} else {
		v["fields"] = c.fields
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestGolden pins the wire bytes of every frame kind. Run with -update after
// an intended protocol change (and bump Protocol).
func TestGolden(t *testing.T) {
	dir := filepath.Join("testdata", "golden")
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			bin, js := c.frame(t), c.json(t)
			binPath, jsPath := filepath.Join(dir, c.name+".bin"), filepath.Join(dir, c.name+".json")
			if *update {
				if err := os.WriteFile(binPath, bin, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(jsPath, js, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			wantBin, err := os.ReadFile(binPath)
			if err != nil {
				t.Fatalf("%v (run go test ./bridge -update)", err)
			}
			if !bytes.Equal(bin, wantBin) {
				t.Errorf("frame bytes changed:\n got %x\nwant %x", bin, wantBin)
			}
			wantJS, err := os.ReadFile(jsPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(js, wantJS) {
				t.Errorf("json changed:\n got %s\nwant %s", js, wantJS)
			}
		})
	}
}

// TestHandRolledEncoders checks the hot-path encoders produce exactly what
// the generated marshaller does, so the shims see one encoding.
func TestHandRolledEncoders(t *testing.T) {
	for _, c := range goldenCases() {
		if c.typ == RawConnect {
			if got := RawConnectFrame(c.id); !bytes.Equal(got, c.frame(t)) {
				t.Errorf("%s: RawConnectFrame\n got %x\nwant %x", c.name, got, c.frame(t))
			}
		}
		switch m := c.msg.(type) {
		case *bridgepb.RequestHead:
			h := BeginHead(nil)
			pairs := append(append([][]byte(nil), m.Env...), bytes.Split(m.EnvBlock, []byte{0})...)
			if len(m.EnvBlock) == 0 {
				pairs = m.Env
			}
			for i := 0; i+1 < len(pairs); i += 2 {
				h.Add(string(pairs[i]), string(pairs[i+1]))
			}
			got := h.Finish(m.UrlScheme, m.RequestId)
			switch {
			case m.WebsocketSession != 0 && m.RawConnection != 0:
				got = HandedConnect(ConnectFrame(got, m.WebsocketSession), m.RawConnection, m.WsMaxMessage, m.WsPingMs)
			case m.WebsocketSession != 0:
				got = ConnectFrame(got, m.WebsocketSession)
			case m.RawConnection != 0:
				got = RawHead(got, m.RawConnection)
			}
			if !bytes.Equal(got, c.frame(t)) {
				t.Errorf("%s: hand-rolled head\n got %x\nwant %x", c.name, got, c.frame(t))
			}
		case *bridgepb.RequestEnd:
			if got := AppendRequestEnd(nil, m.Aborted, m.Reason); !bytes.Equal(got, c.frame(t)) {
				t.Errorf("%s: hand-rolled end\n got %x\nwant %x", c.name, got, c.frame(t))
			}
		case *bridgepb.ResponseHead:
			var hdrs [][]byte
			status, err := DecodeResponseHead(c.frame(t)[HeaderSize:], func(n, v []byte) {
				hdrs = append(hdrs, bytes.Clone(n), bytes.Clone(v))
			})
			want := m.Headers
			if len(m.HeaderBlock) > 0 {
				want = append(append([][]byte(nil), want...), bytes.Split(m.HeaderBlock, []byte{0})...)
			}
			if err != nil || status != int(m.Status) || !equalBytes(hdrs, want) {
				t.Errorf("%s: decode = %d %q %v", c.name, status, hdrs, err)
			}
		case *bridgepb.ResponseEnd:
			msg, vars, err := DecodeResponseEnd(c.frame(t)[HeaderSize:])
			if err != nil || msg != m.Error || strings.Join(vars, "\x00") != string(block(m.Logvars)) {
				t.Errorf("%s: decode = %q %q %v", c.name, msg, vars, err)
			}
		}
	}
}

func equalBytes(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestHeaderBlock covers how a header_block splits, empty values included.
func TestHeaderBlock(t *testing.T) {
	tests := []struct {
		block   string
		want    []string
		wantErr bool
	}{
		{"A\x00v", []string{"A", "v"}, false},
		{"A\x00v\x00B\x00", []string{"A", "v", "B", ""}, false},
		{"A\x00\x00B\x00w", []string{"A", "", "B", "w"}, false},
		{"A", nil, true},
		{"A\x00v\x00", nil, true},
		{"A\x00v\x00B", nil, true},
	}
	for _, tc := range tests {
		frame, _ := AppendMessage(nil, ResponseHead, &bridgepb.ResponseHead{Status: 200, HeaderBlock: []byte(tc.block)})
		var got []string
		_, err := DecodeResponseHead(frame[HeaderSize:], func(n, v []byte) { got = append(got, string(n), string(v)) })
		if (err != nil) != tc.wantErr || (!tc.wantErr && strings.Join(got, "|") != strings.Join(tc.want, "|")) {
			t.Errorf("%q: got %q, %v; want %q (error %v)", tc.block, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestGoldenCoversEveryFrameType: a frame type added to bridge.proto gets
// a vector, so every shim's selftest checks (or names as skipped) it.
func TestGoldenCoversEveryFrameType(t *testing.T) {
	have := map[Type]bool{}
	for _, c := range goldenCases() {
		have[c.typ] = true
	}
	for n, name := range bridgepb.FrameType_name {
		if typ := Type(n); typ != bridgepb.FrameType_FRAME_INVALID && !have[typ] {
			t.Errorf("no golden vector for %s", name)
		}
	}
}
