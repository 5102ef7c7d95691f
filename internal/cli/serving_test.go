package cli

import (
	"fmt"
	"net"
	"testing"

	"github.com/gwhq/gw/gateway"
	"github.com/gwhq/gw/internal/config"
)

func TestServingAttrs(t *testing.T) {
	cfg := &config.Config{Apps: []config.App{{Name: "blog", Lang: config.LangPython, Mount: "/blog"}}}
	tcp, _ := net.ResolveTCPAddr("tcp", "127.0.0.1:41234")
	bound := []gateway.Bound{
		{Proto: "http", Name: "http", Addr: tcp},
		{Proto: "uwsgi", Name: "uwsgi", Addr: &net.UnixAddr{Name: "/run/gw.sock", Net: "unix"}},
		{Proto: "uwsgi", Name: "uwsgi.1", Addr: &net.UnixAddr{Name: "/run/gw2.sock", Net: "unix"}},
	}
	got := fmt.Sprint(servingAttrs(cfg, bound))
	want := "[http=127.0.0.1:41234 uwsgi=unix:/run/gw.sock uwsgi.1=unix:/run/gw2.sock apps=blog(python /blog)]"
	if got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}
