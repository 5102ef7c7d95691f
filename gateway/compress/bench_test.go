package compress

import (
	stdgzip "compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// corpus is a realistic answer of about 1 MiB: an API's JSON list (varied
// ids, names, dates, nested tags) or a server-rendered HTML table.
func corpus(kind string) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu")
	var b strings.Builder
	for i := 0; b.Len() < 1<<20; i++ {
		w1, w2 := words[rng.IntN(len(words))], words[rng.IntN(len(words))]
		switch kind {
		case "json":
			fmt.Fprintf(&b, `{"id":%d,"user":"%s.%s%d","email":"%s@%s.example","score":%.3f,"created":"2026-%02d-%02dT%02d:%02d:%02dZ","tags":["%s","%s"],"active":%t},`,
				rng.IntN(1e9), w1, w2, rng.IntN(1000), w1, w2, rng.Float64()*100, 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), w2, w1, rng.IntN(2) == 0)
		default:
			fmt.Fprintf(&b, `<tr class="row-%d"><td><a href="/users/%d">%s %s</a></td><td>%d</td><td><span class="badge badge-%s">%s</span></td></tr>`+"\n",
				i%2, rng.IntN(1e6), w1, w2, rng.IntN(1e5), w2, w1)
		}
	}
	return []byte(b.String())
}

// BenchmarkCodings: the figures for the choice of codings and levels:
// MB/s (and so CPU per MiB: 1/MB/s) and the compressed size in percent.
//
//	go test -run '^$' -bench Codings ./gateway/compress/
func BenchmarkCodings(b *testing.B) {
	type codec struct {
		name string
		make func(io.Writer) io.WriteCloser
	}
	codecs := []codec{
		{"stdlib-gzip-6", func(w io.Writer) io.WriteCloser { z, _ := stdgzip.NewWriterLevel(w, 6); return z }},
	}
	for _, l := range []int{1, 5, 6, 9} {
		codecs = append(codecs, codec{fmt.Sprintf("gzip-%d", l), func(w io.Writer) io.WriteCloser { z, _ := gzip.NewWriterLevel(w, l); return z }})
	}
	for _, l := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression} {
		codecs = append(codecs, codec{"zstd-" + l.String(), func(w io.Writer) io.WriteCloser {
			z, _ := zstd.NewWriter(w, zstd.WithEncoderLevel(l), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(512<<10), zstd.WithLowerEncoderMem(true))
			return z
		}})
	}
	for _, kind := range []string{"json", "html"} {
		body := corpus(kind)
		for _, c := range codecs {
			b.Run(kind+"/"+c.name, func(b *testing.B) {
				var n countWriter
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					n = 0
					z := c.make(&n)
					z.Write(body)
					z.Close()
				}
				b.ReportMetric(100*float64(n)/float64(len(body)), "%size")
			})
		}
	}
}

type countWriter int

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
