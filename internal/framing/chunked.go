package framing

// decoder undoes the chunked transfer coding (RFC 9112 §7.1) of a body that
// arrives in pieces of any size, with no buffering: data bytes go straight
// through. Chunk extensions and trailer fields are dropped: they describe
// the app's framing, which ends here. A line may end in LF alone, which
// RFC 9112 §2.2 lets a recipient accept.
type decoder struct {
	state int
	size  int64 // bytes of the current chunk still to come, or being parsed
	digs  int   // hex digits of the size line so far
	line  bool  // the trailer line being read has some bytes
	err   error // the framing is broken; everything after is dropped
}

const (
	stSize    = iota // hex digits of a chunk size
	stExt            // the rest of the size line (extensions)
	stData           // chunk data
	stDataCR         // the CR (or LF) after chunk data
	stDataLF         // the LF after that CR
	stTrailer        // trailer lines, up to an empty one
	stDone           // after the last chunk's empty line
)

func (d *decoder) done() bool { return d.state == stDone }

// feed decodes p, passing data bytes to emit; it returns emit's error only.
// A framing error is kept in d.err and ends the decoding.
func (d *decoder) feed(p []byte, emit func([]byte) error) error {
	for len(p) > 0 && d.err == nil {
		if d.state == stData {
			n := int64(len(p))
			if n > d.size {
				n = d.size
			}
			if err := emit(p[:n]); err != nil {
				return err
			}
			d.size -= n
			p = p[n:]
			if d.size == 0 {
				d.state = stDataCR
			}
			continue
		}
		d.step(p[0])
		p = p[1:]
	}
	return nil
}

// step advances the framing state by one byte outside chunk data.
func (d *decoder) step(c byte) {
	switch d.state {
	case stSize:
		switch v := unhex(c); {
		case v >= 0:
			if d.digs == 15 {
				d.fail("chunk size too large")
				return
			}
			d.size, d.digs = d.size<<4|int64(v), d.digs+1
		case d.digs == 0:
			d.fail("chunk size missing")
		case c == '\n':
			d.endSizeLine()
		case c == ';' || c == ' ' || c == '\t' || c == '\r':
			d.state = stExt
		default:
			d.fail("invalid chunk size")
		}
	case stExt:
		if c == '\n' {
			d.endSizeLine()
		}
	case stDataCR:
		switch c {
		case '\r':
			d.state = stDataLF
		case '\n':
			d.state = stSize
		default:
			d.fail("chunk data longer than its size")
		}
	case stDataLF:
		if c != '\n' {
			d.fail("chunk data not followed by CRLF")
			return
		}
		d.state = stSize
	case stTrailer:
		switch {
		case c == '\n' && !d.line:
			d.state = stDone
		case c == '\n':
			d.line = false
		case c != '\r':
			d.line = true
		}
	case stDone:
		d.fail("data after the last chunk")
	}
}

func (d *decoder) endSizeLine() {
	d.digs = 0
	if d.size == 0 {
		d.state, d.line = stTrailer, false
		return
	}
	d.state = stData
}

func (d *decoder) fail(msg string) {
	d.err = errorf("app's chunked response body: %s", msg)
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}
