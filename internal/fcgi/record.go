// Package fcgi is the FastCGI 1.0 record codec, used in both directions:
// by gw's FastCGI responder (nginx fastcgi_pass -> gw) and by the php-cgi
// client (gw -> php-cgi -b). It holds pure encoding and decoding only; the
// server loop lives in gateway/fastcgi.
//
// Facts checked against nginx 1.22 and php-cgi 8.2 are in
// shared/notes/protocols.md §2; the trap numbers cited below refer to §0
// of that file.
package fcgi

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Type is a record type (spec §8).
type Type uint8

// Record types. GetValues, GetValuesResult and UnknownType are management
// records and travel with request ID 0.
const (
	TypeBeginRequest    Type = 1
	TypeAbortRequest    Type = 2
	TypeEndRequest      Type = 3
	TypeParams          Type = 4
	TypeStdin           Type = 5
	TypeStdout          Type = 6
	TypeStderr          Type = 7
	TypeData            Type = 8
	TypeGetValues       Type = 9
	TypeGetValuesResult Type = 10
	TypeUnknownType     Type = 11
)

var typeNames = [...]string{
	"", "BEGIN_REQUEST", "ABORT_REQUEST", "END_REQUEST", "PARAMS", "STDIN",
	"STDOUT", "STDERR", "DATA", "GET_VALUES", "GET_VALUES_RESULT", "UNKNOWN_TYPE",
}

// String is the spec's name for t, for log lines.
func (t Type) String() string {
	if int(t) < len(typeNames) && t != 0 {
		return typeNames[t]
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// Role is the role a BEGIN_REQUEST asks the application to play.
type Role uint16

// Roles (spec §6).
const (
	RoleResponder  Role = 1
	RoleAuthorizer Role = 2
	RoleFilter     Role = 3
)

// FlagKeepConn in BEGIN_REQUEST flags: the web server owns the connection
// and the application must not close it after END_REQUEST (spec §5.1).
const FlagKeepConn = 1

// ProtocolStatus is the protocolStatus of END_REQUEST (spec §5.5).
type ProtocolStatus uint8

// Protocol statuses.
const (
	StatusRequestComplete ProtocolStatus = 0
	StatusCantMultiplex   ProtocolStatus = 1
	StatusOverloaded      ProtocolStatus = 2
	StatusUnknownRole     ProtocolStatus = 3
)

const (
	// Version is the only protocol version there is.
	Version = 1
	// HeaderLen is the size of a record header.
	HeaderLen = 8
	// MaxContent is the largest contentLength a record can carry (u16).
	MaxContent = 65535
)

// Header is a record header. Reserved is carried, never checked: php-cgi
// fills it with stale buffer bytes (protocols.md §2.1).
type Header struct {
	Version       uint8
	Type          Type
	ID            uint16
	ContentLength uint16
	PaddingLength uint8
	Reserved      uint8
}

// ParseHeader decodes the first HeaderLen bytes of b. Any padding length
// (0-255) is valid; the version must be 1.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("fcgi: record header: %w", io.ErrUnexpectedEOF)
	}
	h := Header{
		Version:       b[0],
		Type:          Type(b[1]),
		ID:            binary.BigEndian.Uint16(b[2:]),
		ContentLength: binary.BigEndian.Uint16(b[4:]),
		PaddingLength: b[6],
		Reserved:      b[7],
	}
	if h.Version != Version {
		return h, fmt.Errorf("fcgi: record version %d, want 1", h.Version)
	}
	return h, nil
}

// Append appends the 8-byte encoding of h.
func (h Header) Append(dst []byte) []byte {
	return append(dst, h.Version, byte(h.Type), byte(h.ID>>8), byte(h.ID),
		byte(h.ContentLength>>8), byte(h.ContentLength), h.PaddingLength, h.Reserved)
}

// padding is what a record of n content bytes needs to end on an 8-byte
// boundary, the spec's recommendation (§3.3) and what nginx does.
func padding(n int) uint8 { return uint8(-n & 7) }

var zeros [255]byte

// AppendRecord appends one whole record (header, content, padding to 8
// bytes). It panics if content is longer than MaxContent: callers split
// streams with StreamWriter or ParamsEncoder.
func AppendRecord(dst []byte, t Type, id uint16, content []byte) []byte {
	if len(content) > MaxContent {
		panic("fcgi: record content over 65535 bytes")
	}
	p := padding(len(content))
	dst = Header{Version: Version, Type: t, ID: id, ContentLength: uint16(len(content)), PaddingLength: p}.Append(dst)
	dst = append(dst, content...)
	return append(dst, zeros[:p]...)
}

// BeginRequest is the body of BEGIN_REQUEST.
type BeginRequest struct {
	Role  Role
	Flags uint8
}

// KeepConn reports whether FlagKeepConn is set.
func (b BeginRequest) KeepConn() bool { return b.Flags&FlagKeepConn != 0 }

// ParseBeginRequest decodes a BEGIN_REQUEST body (spec §5.1: 8 bytes).
func ParseBeginRequest(content []byte) (BeginRequest, error) {
	if len(content) != 8 {
		return BeginRequest{}, fmt.Errorf("fcgi: BEGIN_REQUEST body is %d bytes, want 8", len(content))
	}
	return BeginRequest{Role: Role(binary.BigEndian.Uint16(content)), Flags: content[2]}, nil
}

// AppendBeginRequest appends a whole BEGIN_REQUEST record.
func AppendBeginRequest(dst []byte, id uint16, role Role, keepConn bool) []byte {
	var flags byte
	if keepConn {
		flags = FlagKeepConn
	}
	return AppendRecord(dst, TypeBeginRequest, id, []byte{byte(role >> 8), byte(role), flags, 0, 0, 0, 0, 0})
}

// EndRequest is the body of END_REQUEST.
type EndRequest struct {
	AppStatus      uint32
	ProtocolStatus ProtocolStatus
}

// ParseEndRequest decodes an END_REQUEST body (spec §5.5: 8 bytes; the
// three reserved bytes are ignored, trap: php-cgi leaves garbage in them).
func ParseEndRequest(content []byte) (EndRequest, error) {
	if len(content) != 8 {
		return EndRequest{}, fmt.Errorf("fcgi: END_REQUEST body is %d bytes, want 8", len(content))
	}
	return EndRequest{AppStatus: binary.BigEndian.Uint32(content), ProtocolStatus: ProtocolStatus(content[4])}, nil
}

// AppendEndRequest appends a whole END_REQUEST record.
func AppendEndRequest(dst []byte, id uint16, appStatus uint32, st ProtocolStatus) []byte {
	var b [8]byte
	binary.BigEndian.PutUint32(b[:], appStatus)
	b[4] = byte(st)
	return AppendRecord(dst, TypeEndRequest, id, b[:])
}

// ParseUnknownType decodes an UNKNOWN_TYPE body: the type not understood.
func ParseUnknownType(content []byte) (Type, error) {
	if len(content) != 8 {
		return 0, fmt.Errorf("fcgi: UNKNOWN_TYPE body is %d bytes, want 8", len(content))
	}
	return Type(content[0]), nil
}

// AppendUnknownType appends a whole UNKNOWN_TYPE record (request ID 0) in
// reply to a management record of type t (spec §4.2).
func AppendUnknownType(dst []byte, t Type) []byte {
	return AppendRecord(dst, TypeUnknownType, 0, []byte{byte(t), 0, 0, 0, 0, 0, 0, 0})
}

// Reader reads records. The content it returns lives in a buffer that the
// next call reuses.
type Reader struct {
	r   *bufio.Reader
	hdr [HeaderLen]byte
	buf []byte
}

// NewReader returns a Reader over r.
func NewReader(r *bufio.Reader) *Reader { return &Reader{r: r} }

// Next reads one record and skips its padding. It returns io.EOF only when
// the stream ends cleanly between records; a record cut short gives
// io.ErrUnexpectedEOF.
func (r *Reader) Next() (Header, []byte, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return Header{}, nil, err
	}
	h, err := ParseHeader(r.hdr[:])
	if err != nil {
		return h, nil, err
	}
	n := int(h.ContentLength)
	if cap(r.buf) < n {
		r.buf = make([]byte, n, max(n, 4096))
	}
	content := r.buf[:n]
	if _, err := io.ReadFull(r.r, content); err != nil {
		return h, nil, fmt.Errorf("fcgi: %s content: %w", h.Type, eofIsUnexpected(err))
	}
	if _, err := r.r.Discard(int(h.PaddingLength)); err != nil {
		return h, nil, fmt.Errorf("fcgi: %s padding: %w", h.Type, eofIsUnexpected(err))
	}
	return h, content, nil
}

func eofIsUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
