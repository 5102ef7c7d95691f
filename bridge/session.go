package bridge

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/gwhq/gw/proto/bridgepb"
)

// WebSocket frame types (proto/bridge.proto; docs/design/websocket.md).
const (
	WSConnect = bridgepb.FrameType_WS_CONNECT
	WSAccept  = bridgepb.FrameType_WS_ACCEPT
	WSText    = bridgepb.FrameType_WS_TEXT
	WSBinary  = bridgepb.FrameType_WS_BINARY
	WSClose   = bridgepb.FrameType_WS_CLOSE
)

// Close codes gw itself sends (RFC 6455 §7.4.1).
const (
	CloseNormal      = 1000
	CloseGoingAway   = 1001
	CloseAbnormal    = 1006 // never on the wire to a client: the peer vanished
	CloseTooBig      = 1009
	CloseInternal    = 1011
	CloseTryAgain    = 1013
	sessionQueue     = 256 // messages from the runner a session holds for a slow client
	sessionIDSize    = 4
	maxSessionPacket = MaxPayload - sessionIDSize
)

// ErrMessageTooLarge: a message that does not fit one bridge frame.
var ErrMessageTooLarge = errors.New("bridge: WebSocket message exceeds 16 MiB")

// Upgrader is the ResponseWriter of a WebSocket handshake (the gateway's):
// once the app accepted, Upgrade completes the handshake with the client
// and takes over the session.
type Upgrader interface {
	http.ResponseWriter
	Upgrade(s *Session, subprotocol string, header http.Header) error
}

// SocketUpgrader is an Upgrader whose client TCP socket may go to the
// runner whole (docs/design/websocket.md "Handover for ASGI"):
// ClientSocket returns it when it can (plain HTTP/1.1 on gw's own server,
// nothing read past the head, no permessage-deflate to negotiate; it then
// stops reading it), else nil and the session is relayed as before.
// WSLimits are the limits the runner then enforces itself. When the app
// accepts on the socket (WS_ACCEPT handed), the exchange calls Handed
// instead of Upgrade: the runner wrote the 101 and owns the session until
// its RAW_CLOSED ends s.
type SocketUpgrader interface {
	Upgrader
	ClientSocket() *net.TCPConn
	WSLimits() (maxMessage uint64, pingMillis uint32)
	Handed(s *Session) error
}

// ConnectFrame turns a finished REQUEST_HEAD frame (BeginHead ... Finish,
// at the start of head) into WS_CONNECT for session id.
func ConnectFrame(head []byte, id uint32) []byte {
	head[0] = byte(WSConnect)
	head = protowire.AppendTag(head, 5, protowire.VarintType)
	head = protowire.AppendVarint(head, uint64(id))
	binary.LittleEndian.PutUint32(head[4:8], uint32(len(head)-HeaderSize))
	return head
}

// Upgrade sends a WS_CONNECT frame through the slot and reads the app's
// decision: WS_ACCEPT hands the session to up (accepted is then true), an
// HTTP answer (the app refused) goes to up as any response does. Errors are
// Exchange's.
func (s *Slot) Upgrade(up Upgrader, connect []byte, sess *Session) (res Result, accepted bool, err error) {
	if err := s.send(connect, nil); err != nil {
		return res, false, err
	}
	t, n, err := s.rd.peekHeader()
	if err != nil {
		return res, false, fmt.Errorf("%w: %w", ErrRunnerGone, err)
	}
	if t != WSAccept {
		res, err = s.readResponse(up, http.MethodGet, nil, nil)
		return res, false, err
	}
	s.rd.br.Discard(HeaderSize)
	b, err := s.rd.Payload(n)
	if err != nil {
		return res, false, fmt.Errorf("%w: %w", ErrRunnerGone, err)
	}
	var acc bridgepb.WsAccept
	if err := proto.Unmarshal(b, &acc); err != nil {
		return res, false, fmt.Errorf("bridge: WS_ACCEPT: %w", err)
	}
	h := http.Header{}
	for i := 0; i+1 < len(acc.Headers); i += 2 {
		k := http.CanonicalHeaderKey(string(acc.Headers[i]))
		if !hopHeaders[k] && !wsHandshakeHeaders[k] {
			h.Add(k, string(acc.Headers[i+1]))
		}
	}
	res.Status, res.HeadSent = http.StatusSwitchingProtocols, true
	if acc.Handed {
		su, ok := up.(SocketUpgrader)
		if !ok || !sess.handed {
			return res, true, errors.New("bridge: WS_ACCEPT handed for a session whose socket was not offered")
		}
		return res, true, su.Handed(sess)
	}
	if err := up.Upgrade(sess, acc.Subprotocol, h); err != nil {
		return res, true, err
	}
	return res, true, nil
}

// wsHandshakeHeaders are the handshake's own (RFC 6455 §4.2.2): the
// gateway writes them; an app's are dropped.
var wsHandshakeHeaders = map[string]bool{
	"Sec-Websocket-Accept": true, "Sec-Websocket-Protocol": true, "Sec-Websocket-Extensions": true,
}

// peekHeader reads the next frame header without consuming it.
func (r *Reader) peekHeader() (Type, int, error) {
	h, err := r.br.Peek(HeaderSize)
	if err != nil {
		return 0, 0, unexpected(err)
	}
	n := binary.LittleEndian.Uint32(h[4:8])
	if n > MaxPayload {
		return 0, 0, ErrFrameTooLarge
	}
	return Type(h[0]), int(n), nil
}

// Message is one WebSocket message.
type Message struct {
	Binary bool
	Data   []byte
}

// Mux is the gateway's end of a runner's session channel: it routes the
// runner's WebSocket frames to their sessions and writes theirs, one
// frame at a time.
type Mux struct {
	c    io.ReadWriteCloser
	wmu  sync.Mutex // one frame at a time on c
	next atomic.Uint32

	mu       sync.Mutex
	sessions map[uint32]*Session
	err      error // set when the channel broke; no new sessions
}

// NewMux serves the session channel c; Run reads it.
func NewMux(c io.ReadWriteCloser) *Mux {
	return &Mux{c: c, sessions: map[uint32]*Session{}}
}

// Open registers a new session, before its WS_CONNECT goes out, so no
// frame of it can arrive unclaimed.
func (m *Mux) Open() (*Session, error) {
	s := &Session{mux: m, in: make(chan Message, sessionQueue), done: make(chan struct{})}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRunnerGone, m.err)
	}
	for {
		s.ID = m.next.Add(1)
		if _, taken := m.sessions[s.ID]; s.ID != 0 && !taken {
			break
		}
	}
	m.sessions[s.ID] = s
	return s, nil
}

// Len is the number of open sessions.
func (m *Mux) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

func (m *Mux) forget(id uint32) *Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[id]
	delete(m.sessions, id)
	return s
}

func (m *Mux) lookup(id uint32) *Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions[id]
}

// Run reads the runner's frames until the channel breaks (the runner
// exited, or Close), then ends every session with 1011.
func (m *Mux) Run() {
	rd := NewReader(bufio.NewReaderSize(m.c, 64<<10))
	err := m.read(rd)
	m.mu.Lock()
	m.err = err
	ss := m.sessions
	m.sessions = map[uint32]*Session{}
	m.mu.Unlock()
	for _, s := range ss {
		s.end(CloseInternal, "the app's runner went away")
	}
}

func (m *Mux) read(rd *Reader) error {
	for {
		t, n, err := rd.Header()
		if err != nil {
			return err
		}
		b, err := rd.Payload(n)
		if err != nil {
			return err
		}
		switch t {
		case WSText, WSBinary:
			if len(b) < sessionIDSize {
				return fmt.Errorf("bridge: %v frame of %d bytes", t, len(b))
			}
			s := m.lookup(binary.LittleEndian.Uint32(b))
			if s == nil {
				continue // it crossed our WS_CLOSE
			}
			bin := t == WSBinary
			// Nothing queued: the gateway may write it to the client from
			// here (one goroutine hand-off fewer per message), if that
			// write would not block.
			if s.pending.Load() == 0 {
				if d := s.direct.Load(); d != nil && (*d)(Message{Binary: bin, Data: b[sessionIDSize:]}) {
					continue
				}
			}
			msg := Message{Binary: bin, Data: append([]byte(nil), b[sessionIDSize:]...)}
			s.pending.Add(1)
			select {
			case s.in <- msg:
			default:
				// The client takes less than the app sends: ending this
				// session beats stalling every session of the runner.
				m.forget(s.ID)
				m.writeClose(s.ID, CloseTryAgain, "client too slow")
				s.end(CloseTryAgain, "client too slow")
			}
		case RawClosed:
			// A handed-over session ended (SendSocket): u32le id, then
			// the runner's message counts, u64le in and out.
			if len(b) < sessionIDSize {
				return fmt.Errorf("bridge: RAW_CLOSED of %d bytes", len(b))
			}
			s := m.forget(binary.LittleEndian.Uint32(b))
			if s == nil {
				continue
			}
			if len(b) >= sessionIDSize+16 {
				s.msgsIn = binary.LittleEndian.Uint64(b[sessionIDSize:])
				s.msgsOut = binary.LittleEndian.Uint64(b[sessionIDSize+8:])
			}
			s.end(CloseNormal, "")
		case WSClose:
			var c bridgepb.WsClose
			if err := proto.Unmarshal(b, &c); err != nil {
				return fmt.Errorf("bridge: WS_CLOSE: %w", err)
			}
			if s := m.forget(c.Session); s != nil {
				s.end(int(c.Code), c.Reason)
			}
		default:
			return fmt.Errorf("bridge: unexpected frame %v on the session channel", t)
		}
	}
}

// Close breaks the channel: Run ends every session.
func (m *Mux) Close() error { return m.c.Close() }

func (m *Mux) write(b []byte) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	_, err := m.c.Write(b)
	return err
}

func (m *Mux) writeClose(id uint32, code int, reason string) error {
	b, err := AppendMessage(nil, WSClose, &bridgepb.WsClose{Session: id, Code: uint32(code), Reason: reason})
	if err != nil {
		return err
	}
	return m.write(b)
}

// Session is one WebSocket session's runner side.
type Session struct {
	ID  uint32
	mux *Mux
	in  chan Message

	once   sync.Once
	done   chan struct{}
	code   int // set before done closes
	reason string
	hdr    [HeaderSize + sessionIDSize]byte
	wmu    sync.Mutex // hdr

	// pending counts messages put in `in` and not yet Taken: while any is,
	// the channel's reader queues, so messages keep their order.
	pending atomic.Int32
	direct  atomic.Pointer[func(Message) bool]

	// A handed-over session (SendSocket): the runner frames it on the
	// client's socket and reports its message counts at the end.
	handed          bool
	msgsIn, msgsOut uint64 // set before done closes
}

// SendSocket hands the client's TCP socket to the runner for session s
// (RAW_CONNECT with s's id, then one byte carrying the socket), before s's
// WS_CONNECT goes out on a slot. s then ends at the runner's RAW_CLOSED
// (or the channel's end), not at a WS_CLOSE.
func (m *Mux) SendSocket(s *Session, tc *net.TCPConn) error {
	uc, ok := m.c.(interface {
		WriteMsgUnix(b, oob []byte, addr *net.UnixAddr) (n, oobn int, err error)
	})
	if !ok {
		return errors.New("bridge: the session channel cannot carry sockets")
	}
	sc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	s.handed = true
	m.wmu.Lock()
	defer m.wmu.Unlock()
	if _, err := m.c.Write(RawConnectFrame(s.ID)); err != nil {
		return fmt.Errorf("%w: %v", ErrRunnerGone, err)
	}
	// Its own write: the runner's reader finds the socket with the byte.
	cerr := sc.Control(func(fd uintptr) {
		_, _, err = uc.WriteMsgUnix([]byte{0}, syscall.UnixRights(int(fd)), nil)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRunnerGone, err)
	}
	return nil
}

// Counts are a handed-over session's messages each way, as its runner
// reported them, once Done is closed.
func (s *Session) Counts() (in, out uint64) { return s.msgsIn, s.msgsOut }

// GoAway asks the runner to close a handed-over session with code (a
// WS_CLOSE from gw); the session stays open until the runner's RAW_CLOSED.
func (s *Session) GoAway(code int, reason string) {
	if s.mux.lookup(s.ID) != nil {
		s.mux.writeClose(s.ID, code, reason)
	}
}

// SetDirect lets the session channel's reader hand a message to write
// instead of queueing it, when none is queued. write runs on that reader,
// so it must not block (it returns false to have the message queued
// instead) and must not keep m.Data past its return.
func (s *Session) SetDirect(write func(m Message) bool) { s.direct.Store(&write) }

// Took says the consumer has finished with one message from Messages
// (written it to the client): once all are, direct writes may resume.
func (s *Session) Took() { s.pending.Add(-1) }

// Messages are the app's messages, in order. After Done, what is left in
// it is still to be delivered.
func (s *Session) Messages() <-chan Message { return s.in }

// Done is closed when the runner side ended: the app closed, the runner
// went away, or the client was too slow (End says which).
func (s *Session) Done() <-chan struct{} { return s.done }

// End is the close code and reason once Done is closed.
func (s *Session) End() (int, string) { return s.code, s.reason }

func (s *Session) end(code int, reason string) {
	s.once.Do(func() {
		s.code, s.reason = code, reason
		close(s.done)
	})
}

// Send writes one client message to the app.
func (s *Session) Send(m Message) error {
	if len(m.Data) > maxSessionPacket {
		return ErrMessageTooLarge
	}
	t := WSText
	if m.Binary {
		t = WSBinary
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	PutHeader(s.hdr[:], t, sessionIDSize+len(m.Data))
	binary.LittleEndian.PutUint32(s.hdr[HeaderSize:], s.ID)
	mx := s.mux
	mx.wmu.Lock()
	defer mx.wmu.Unlock()
	// One writev for header and message.
	bufs := net.Buffers{s.hdr[:], m.Data}
	if _, err := bufs.WriteTo(mx.c); err != nil {
		return fmt.Errorf("%w: %w", ErrRunnerGone, err)
	}
	return nil
}

// Close ends the session from the client's side: the app gets
// websocket.disconnect with code. A session the runner already ended is
// only forgotten.
func (s *Session) Close(code int, reason string) {
	if s.mux.forget(s.ID) != nil {
		s.mux.writeClose(s.ID, code, reason) // a broken channel ends the session anyway
	}
	s.end(code, reason)
}

// Forget drops a session the app refused (an HTTP answer instead of
// WS_ACCEPT): the runner has forgotten it already.
func (s *Session) Forget() {
	s.mux.forget(s.ID)
	s.end(CloseNormal, "")
}
